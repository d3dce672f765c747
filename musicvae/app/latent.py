"""Latent sliders: steer a groove's z along principal directions or raw dimensions.

Speed: the sliders, temperature and seed live in one ``st.fragment`` (the pickers above it do
not rerun on a slider move), single decodes are kept in a small thread-safe LRU, and after each
move the next step of the slider just moved (and the step back) is decoded in a background
thread, so a step-by-step move usually finds its groove already decoded.  Decoding is always one
z at a time with the same seed, so a prefetched groove is exactly the one the move would decode.

Every visible slider's grooves one step either side, and the temperature slider's, go to the looper
as its bank (with feel when Humanize is on), so the browser switches on the slider's move and the
rerun only confirms (:func:`musicvae.app.stage.slider_bank`).  They come from the same cache: the
moved slider's are usually there (the background thread decodes two steps ahead); the other sliders'
are new after each move, so at most ``BANK_DECODES`` are decoded in the run, the rest in the
background, banked by a later run.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import streamlit as st

from musicvae.app import core, feel, modes, ui
from musicvae.app.modes import DECODE_SEED_OFFSET, closeness, encode_anchored, temperature_and_seed
from musicvae.app.stage import Stage, follow, slider_bank, with_next
from musicvae.pattern import DrumPattern

STEP = 0.1  # slider step, in standard deviations
MAX_DECODED = 512
MAX_PENDING = 3  # queued or running prefetches; a busy server does not speculate beyond this
BANK_DECODES = 8  # new neighbours decoded in a run for the bank: the 3 default sliders and the temperature, both
# sides (~8 ms each, ~60 with feel with the shipped groove model); after a step usually 6 are new (the moved one's
# were prefetched)
TEMPERATURE = "temperature"  # ``moved`` when the temperature slider moved (no direction key is named so)
_LOCK = threading.Lock()
_DECODED: OrderedDict[tuple, DrumPattern] = OrderedDict()
_PENDING: set[tuple] = set()  # keys being prefetched (under _LOCK)
# A user groove's anchor by its code's bytes (under _LOCK): decodes steered from that code fade it with the
# distance moved (api.TrainedModel.steered); a random start has none.
_ANCHORS: OrderedDict[bytes, object] = OrderedDict()
MAX_ANCHORS = 16
log = logging.getLogger(__name__)


def _shutdown(executor: ThreadPoolExecutor) -> None:
    executor.shutdown(wait=False, cancel_futures=True)


@st.cache_resource(show_spinner=False, on_release=_shutdown)
def _prefetcher() -> ThreadPoolExecutor:
    """The one background decode thread: made on the first prefetch, shut down when the cache is cleared."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="musicvae-prefetch")


def steer(z0: np.ndarray, alphas: dict[str, float], directions) -> np.ndarray:
    """z0 moved by ``alpha`` units along each chosen direction ('pc:i' or raw 'z:d')."""
    z = np.asarray(z0, dtype=np.float32).copy()
    if directions is not None:
        z += directions.offset({int(k[3:]): a for k, a in alphas.items() if k.startswith("pc:")})
    for key, alpha in alphas.items():
        if key.startswith("z:"):
            z[int(key[2:])] += alpha  # the prior has unit variance per dimension
    return z


def _key(model_key: str, z0: np.ndarray, alphas: dict[str, float], temperature: float, seed: int) -> tuple:
    moved = tuple(sorted((k, round(a, 3)) for k, a in alphas.items() if round(a, 3) != 0))
    return model_key, np.asarray(z0, np.float32).tobytes(), moved, round(temperature, 4), seed


def decode_steered(model, model_key: str, z0, alphas: dict[str, float], directions, temperature: float,
                   seed: int) -> DrumPattern:
    key = _key(model_key, z0, alphas, temperature, seed)
    with _LOCK:
        if key in _DECODED:
            _DECODED.move_to_end(key)
            return _DECODED[key]
    with _LOCK:
        base = _ANCHORS.get(np.asarray(z0, np.float32).tobytes())
    z = steer(z0, alphas, directions)[None]
    pattern = (model.decode(z, temperature, seed) if base is None else model.steered(z, temperature, seed, base))[0]
    with _LOCK:
        _DECODED[key] = pattern
        while len(_DECODED) > MAX_DECODED:
            _DECODED.popitem(last=False)
    return pattern


def _prefetch_job(key: tuple, args: tuple, played: feel.Feel | None = None) -> None:
    try:
        pattern = decode_steered(*args)
        if played is not None:  # Humanize is on: the next step's groove with feel, too
            feel.play_one(played, pattern)
    except Exception:  # a guess that failed costs nothing, but must not vanish silently
        log.exception("prefetching a steered groove failed")
    finally:
        with _LOCK:
            _PENDING.discard(key)


def prefetch(model, model_key: str, z0, alphas: dict[str, float], moved: str | None, direction: float, directions,
             temperature: float, seed: int, played: feel.Feel | None = None) -> None:
    """Decode the next step of the slider just moved (then the step back) in the background."""
    if moved is None:
        return
    for sign in (direction, -direction):
        value = round(alphas[moved] + sign * STEP, 3)
        if -3.0 <= value <= 3.0:
            prefetch_one(model, model_key, z0, {**alphas, moved: value}, directions, temperature, seed, played)


def prefetch_one(model, model_key: str, z0, alphas: dict[str, float], directions, temperature: float, seed: int,
                 played: feel.Feel | None = None) -> None:
    """Decode the groove at ``alphas`` in the background (unless it is there, on its way, or too much is)."""
    key = _key(model_key, z0, alphas, temperature, seed)
    with _LOCK:
        if key in _DECODED or key in _PENDING or len(_PENDING) >= MAX_PENDING:
            return
        _PENDING.add(key)
    _prefetcher().submit(_prefetch_job, key, (model, model_key, z0, alphas, directions, temperature, seed), played)


def ready(model_key: str, z0, alphas: dict[str, float], temperature: float, seed: int,
          played: feel.Feel | None) -> bool:
    """Whether the groove at ``alphas`` is decoded (and played with feel, when on) already: free to bank."""
    key = _key(model_key, z0, alphas, temperature, seed)
    with _LOCK:
        pattern = _DECODED.get(key)
    return pattern is not None and (played is None or feel.has_one(played, pattern))


def steer_tag(z0, seed: int, model_name: str, played: feel.Feel | None, values: dict[str, float], t: float) -> str:
    """The looper's tag for the steered groove: it names everything the groove depends on (the code, the
    decode seed, the model, the feel, every slider's value and the temperature)."""
    code = hashlib.sha1(np.asarray(z0, np.float32).tobytes()).hexdigest()[:8]
    salt = f"z {code}, seed {seed}, {model_name}"
    if played is not None:
        salt += f", feel {played.variation:g}/{played.take}"
    moved_values = ",".join(f"{k}={a:g}" for k, a in sorted(values.items()) if round(a, 3) != 0)
    return f"latent {moved_values or 'origin'} T={t:g}|{salt}"


def next_groove(ctx: ui.Context, base: DrumPattern | None, z0, alphas: dict[str, float], directions,
                temperature: float, played: feel.Feel | None) -> tuple[DrumPattern, str]:
    """(groove, tag) that N / "New seed" bring: the same offsets from the next seed's random code (or
    from the same groove's code, decoded with the next seed), as the rerun after the key will draw it."""
    upcoming = ui.upcoming_seed()
    z_next = ctx.model.sample_z(1, upcoming).numpy()[0] if base is None else z0
    decode_seed = upcoming + DECODE_SEED_OFFSET
    pattern = decode_steered(ctx.model, core.model_key(ctx.pick.path), z_next, alphas, directions, temperature,
                             decode_seed)
    if played is not None:
        pattern = feel.humanize_one(pattern, played)
    return pattern, steer_tag(z_next, decode_seed, ctx.pick.name, played, alphas, temperature)


def slider_banks(ctx: ui.Context, z0, alphas: dict[str, float], moved: str | None, directions, temperature: float,
                 seed: int, played: feel.Feel | None, current: DrumPattern, with_temperature: bool = True) -> dict:
    """``bank``/``nav``/``tag`` for :meth:`Stage.mount`: every slider's groove one step either side, and
    the temperature slider's (``with_temperature``: only while the looper plays the steered groove;
    the temperature does not bring it back from the starting groove).

    The moved slider first (``moved``: a direction key, or :data:`TEMPERATURE`), the temperature last
    otherwise; neighbours not decoded yet cost a decode here, up to ``BANK_DECODES`` per run, the
    others go to the background thread and are banked by a later run (their moves go through the
    server until then).  A tag names every slider's value and the temperature, so no two points of
    the merged bank share a tag for different grooves."""
    model_key = core.model_key(ctx.pick.path)
    budget = [BANK_DECODES]

    def tag_of(values: dict[str, float], t: float) -> str:
        return steer_tag(z0, seed, ctx.pick.name, played, values, t)

    plan: dict[tuple, DrumPattern | None] = {}  # each point's decode (no feel yet), None: left to the prefetcher

    def planned(nearby: dict[str, float], t: float) -> DrumPattern | None:
        point = _key(model_key, z0, nearby, t, seed)
        if point not in plan:
            if nearby == alphas and round(t, 4) == round(temperature, 4):
                plan[point] = current
            elif (known := ready(model_key, z0, nearby, t, seed, played)) or budget[0] > 0:
                budget[0] -= not known
                plan[point] = decode_steered(ctx.model, model_key, z0, nearby, directions, t, seed)
            else:
                prefetch_one(ctx.model, model_key, z0, nearby, directions, t, seed, played)
                plan[point] = None
        return plan[point]

    def groove_at(nearby: dict[str, float], t: float) -> DrumPattern | None:
        pattern = planned(nearby, t)
        if pattern is None or pattern is current or played is None:
            return pattern
        return feel.humanize_one(pattern, played)

    def one(key: str, groove) -> tuple[dict, dict]:
        if key == TEMPERATURE:
            more, nav, _ = slider_bank(TEMPERATURE, temperature, modes.TEMPERATURE_STEP, modes.TEMPERATURE_MIN,
                                       modes.TEMPERATURE_MAX, lambda t: groove(alphas, t),
                                       tag_at=lambda t: tag_of(alphas, t))
        else:
            more, nav, _ = slider_bank(f"lat_{key}", alphas[key], STEP, -3.0, 3.0,
                                       lambda v: groove({**alphas, key: round(v, 3)}, temperature),
                                       tag_at=lambda v: tag_of({**alphas, key: v}, temperature))
        return more, nav

    bank: dict[str, DrumPattern] = {}
    sliders: list[dict] = []
    order = sorted(alphas, key=lambda k: k != moved) + ([TEMPERATURE] if with_temperature else [])
    if moved == TEMPERATURE and with_temperature:
        order = [TEMPERATURE] + list(alphas)
    if played is not None:  # the new neighbours with feel in one batch of the groove model, not one call each
        for key in order:
            one(key, planned)
        feel.play_many(played, [p for p in plan.values() if p is not None and p is not current])
    for key in order:
        more, nav = one(key, groove_at)
        bank.update(more)
        sliders += nav["sliders"]
    return {"bank": bank, "nav": {"sliders": sliders}, "tag": tag_of(alphas, temperature)}


def _reset_latent() -> None:
    for key in [k for k in st.session_state if str(k).startswith("lat_")]:
        st.session_state[key] = 0.0
    follow("latent", "latent")


@st.cache_resource(show_spinner=False)
def _directions(path: str, z_size: int):
    from musicvae.latent.directions import load_directions

    return load_directions(path, z_size)


def direction_options(directions, z_size: int, raw: list[str] | None = None) -> dict[str, str]:
    """Named attribute sliders, then principal directions, then only the raw z dimensions in ``raw``
    (those already chosen: 256 raw options made the multiselect's type-ahead add many at once)."""
    options: dict[str, str] = {}
    if directions is not None:
        # named attribute sliders first: they passed the measurement (latent/steering.py, README table)
        for i, entry in enumerate(directions.entries):
            if entry.get("kind") == "attribute":
                options[f"pc:{i}"] = f"{entry['name']} (measured ρ {entry['rho']:.2f})"
        for i, entry in enumerate(directions.entries):
            if entry.get("kind") == "attribute":
                continue
            share = 100 * entry["explained_variance"]
            hint = ", + busier" if entry.get("hits_correlation", 0.0) > 0.3 else ""
            options[f"pc:{i}"] = f"{entry['name']} ({f'{share:.0f}' if share >= 1 else '<1'}% var{hint})"
    for key in raw or []:
        if key.startswith("z:") and key[2:].isdigit() and int(key[2:]) < z_size:
            options[key] = f"z[{int(key[2:])}] (raw)"
    return options


def _add_raw() -> None:
    state = st.session_state
    key = f"z:{int(state.get('raw_z', 0))}"
    chosen = list(state.get("latent_dirs") or [])
    if key not in chosen and len(chosen) < 8:
        state["latent_dirs"] = chosen + [key]


def short_label(label: str) -> str:
    """'busier (measured ρ 1.00)' -> 'busier' (presentation mode shows no measurements)."""
    return label.split(" (")[0]


def latent_ui(ctx: ui.Context) -> None:
    state = st.session_state
    st.header("Latent sliders")
    items = ui.library()
    if ctx.model is None:
        ui.no_model_notice()
        key = ui.pick_groove("Groove", "latent_base", items)
        stage = Stage(ctx, "latent", "latent_base")
        stage.show(items[key][1], "latent_base", items[key][0])
        stage.mount()
        return
    directions = _directions(str(ctx.pick.path), ctx.model.z_size)
    raw = [k for k in state.get("latent_dirs") or [] if str(k).startswith("z:")]
    options = direction_options(directions, ctx.model.z_size, raw)
    if state.get("latent_dirs") is None or not set(state["latent_dirs"]) <= set(options):
        state["latent_dirs"] = list(options)[:3] or ["z:0"]
        options = direction_options(directions, ctx.model.z_size, state["latent_dirs"])
    labels = options if not ctx.present else {k: short_label(v) for k, v in options.items()}
    base_col, pick_col, raw_col = st.columns([3, 5, 2], vertical_alignment="bottom")
    with base_col:
        base_key = ui.pick_groove("Start from", "latent_base", items, {"random": "a random z (from the seed)"})
    pick_col.multiselect("Directions to steer", list(options), format_func=labels.__getitem__, key="latent_dirs",
                         max_selections=8)
    if not ctx.present:
        with raw_col.popover("+ raw z"):
            st.number_input("Raw z dimension", 0, ctx.model.z_size - 1, step=1, key="raw_z")
            st.button("Add this dimension", on_click=_add_raw, key="raw_z_add")
    if directions is None:
        st.info("No principal directions are stored with this model (run `musicvae directions --checkpoint "
                f"{ctx.pick.path}`), so only raw z dimensions are offered.")
    if not ctx.present:
        st.caption("PC = principal direction: the axes along which the training grooves' codes vary most (the share "
                   "of variance they explain; '+ busier' when + goes with more hits), so they change the groove a "
                   "lot. Raw z dimensions carry no meaning on their own: each one is an arbitrary mix of features.")
    ui.link_notice([base_key], items)
    base = None if base_key == "random" else items[base_key][1]
    _steer(ctx, base, items[base_key][0] if base is not None else "", labels, directions)


def _command(command: str) -> None:
    if command == "new":
        ui.new_seed()
        follow("latent", "latent")


def _anchor_start(ctx: ui.Context, base: DrumPattern) -> np.ndarray:
    """The user groove's code, its anchor registered for the decodes steered from it."""
    [anchored] = encode_anchored(ctx, [base])
    z0 = anchored.code.numpy()
    key = z0.astype(np.float32).tobytes()
    with _LOCK:
        _ANCHORS[key] = anchored
        _ANCHORS.move_to_end(key)
        while len(_ANCHORS) > MAX_ANCHORS:
            _ANCHORS.popitem(last=False)
    return z0


@st.fragment
def _steer(ctx: ui.Context, base: DrumPattern | None, base_label: str, options: dict[str, str], directions) -> None:
    state = st.session_state
    stage = Stage(ctx, "latent", "latent")
    temperature_and_seed(ctx)
    seed, temperature = int(state["seed"]), round(float(state["temperature"]), 4)  # as the bank's neighbours are
    z0 = ctx.model.sample_z(1, seed).numpy()[0] if base is None else _anchor_start(ctx, base)
    alphas: dict[str, float] = {}
    slider_col, roll_col = st.columns([2, 3])  # sliders beside the roll: one screen
    for key in state["latent_dirs"]:
        widget = f"lat_{key}"
        if widget not in state:
            state[widget] = 0.0
        slider_col.slider(options[key], -3.0, 3.0, step=STEP, key=widget, on_change=follow, args=("latent", "latent"),
                          help="In standard deviations of the training codes along this direction.")
        alphas[key] = round(float(state[widget]), 3)
    slider_col.button("↺ Reset sliders", on_click=_reset_latent, key="latent_reset")
    previous = state.get("_latent_prev", {})
    changed = [k for k in alphas if k in previous and alphas[k] != previous[k]]
    moved = changed[0] if len(changed) == 1 else next(iter(alphas), None)  # nothing moved yet: the first one
    direction = -1.0 if moved in changed and alphas[moved] < previous[moved] else 1.0
    state["_latent_prev"] = dict(alphas)
    previous_t = state.get("_latent_prev_t")
    state["_latent_prev_t"] = temperature
    t_direction = 0.0 if previous_t is None or changed or previous_t == temperature else (
        1.0 if temperature > previous_t else -1.0)  # the temperature slider moved (and nothing else)
    timer = ui.Timer()
    model_key = core.model_key(ctx.pick.path)
    decode_seed = seed + DECODE_SEED_OFFSET
    pattern = decode_steered(ctx.model, model_key, z0, alphas, directions, temperature, decode_seed)
    timer.mark("decode")
    played = feel.current()
    if played is not None:  # the steered groove, played with feel
        pattern = feel.humanize_one(pattern, played)
        timer.mark("humanize")
    label = ", ".join(f"{options[k].split(' (')[0]} {a:+.1f}" for k, a in alphas.items() if a) or "no offsets"
    stage.offer("latent", f"steered groove ({label})", pattern)  # the looper first, then the rolls
    if base is not None:
        stage.offer("latent_src", f"the starting groove: {base_label}", base)
    steered = (stage.chosen if stage.chosen in stage.grooves else stage.main) == stage.main
    banked = slider_banks(ctx, z0, alphas, TEMPERATURE if t_direction else moved, directions, temperature,
                          decode_seed, played, pattern, with_temperature=steered)
    if steered:  # N / "New seed" (from the starting groove, the button keeps playing that: not banked)
        banked = with_next(banked, *next_groove(ctx, base, z0, alphas, directions, temperature, played))
    timer.mark("neighbours")
    stage.mount(_command, **banked)
    with roll_col:
        stage.show(pattern, "latent", f"steered groove ({label})")
    timer.mark("roll")
    if base is not None:  # the groove the sliders start from: seen and heard too
        stage.show(base, "latent_src", f"the starting groove: {base_label}", height=int(ctx.roll_height * 0.6),
                   downloads=False, colorbar=False)
        closeness(ctx, [("its hits", base)])
    if not ctx.present:
        attribute_panel(ctx, z0, alphas, directions, pattern)
    ahead_t = round(temperature + 2 * t_direction * modes.TEMPERATURE_STEP, 4)
    if t_direction and steered and modes.TEMPERATURE_MIN <= ahead_t <= modes.TEMPERATURE_MAX:  # the step after, too
        prefetch_one(ctx.model, model_key, z0, alphas, directions, ahead_t, decode_seed, played)
    if moved is not None:  # the steps after the banked ones: the next run banks them at no cost
        value = round(alphas[moved] + direction * STEP, 3)
        ahead = {**alphas, moved: value} if -3.0 <= value <= 3.0 else alphas
        prefetch(ctx.model, model_key, z0, ahead, moved, direction, directions, temperature, decode_seed, played)
    timer.show(ctx)
    ui.sync_url()


def named_sliders(alphas: dict[str, float], directions) -> list[tuple[str, dict]]:
    """(slider key, directions entry) for each selected named attribute slider."""
    if directions is None:
        return []
    chosen = []
    for key in alphas:
        if key.startswith("pc:"):
            entry = directions.entries[int(key[3:])]
            if entry.get("kind") == "attribute":
                chosen.append((key, entry))
    return chosen


def attribute_panel(ctx: ui.Context, z0, alphas: dict[str, float], directions, pattern: DrumPattern) -> None:
    """Each named slider's attribute on screen now, and how it moves along the slider for this groove."""
    from musicvae.latent.attributes import ATTRIBUTES

    chosen = named_sliders(alphas, directions)
    if not chosen:
        return
    values = {entry["attribute"]: float(ATTRIBUTES[entry["attribute"]][1](pattern.hits)[0]) for _, entry in chosen}
    st.caption("Now: " + " · ".join(f"{entry['name']}: {entry['attribute']} = {values[entry['attribute']]:.2f}"
                                    for _, entry in chosen))
    key, entry = chosen[0]
    positions = np.linspace(-3.0, 3.0, 7)
    # through the shared decode cache: moving this slider leaves every point of its curve unchanged
    model_key = core.model_key(ctx.pick.path)
    decoded = [decode_steered(ctx.model, model_key, z0, {**alphas, key: round(float(a), 3)}, directions, 0.0, 0)
               for a in positions]
    curve = [float(ATTRIBUTES[entry["attribute"]][1](p.hits)[0]) for p in decoded]
    st.line_chart({"slider position": positions, entry["attribute"]: curve}, x="slider position",
                  y=entry["attribute"], height=160)
    st.caption(f"{entry['attribute']} of the greedy decode along '{entry['name']}' for this groove; measured on 256 "
               f"validation grooves: ρ {entry['rho']:.2f}, {entry['change_per_unit']:+.2f} per unit.")
