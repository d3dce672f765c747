"""Streamlit building blocks of the playground: state and URL, cached resources, sidebar, groove views.

State lives in ``st.session_state`` under fixed keys (``DEFAULTS``); widgets never get a
``value=`` so the URL (``restore_from_url``) and callbacks can set them, and keys of widgets that
are not on screen in the current mode are re-assigned each run so Streamlit keeps them.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

import streamlit as st

from musicvae.app import core, feel, models
from musicvae.pattern import NUM_CLASSES, DrumPattern

log = logging.getLogger(__name__)
UPLOAD_TYPES = ["mid", "midi", "rmi", "kar", "smf"]
DEFAULT_PRESETS = ("rock-1", "funk-1", "jazz-1", "hiphop-1", "latin-1")
DEFAULTS: dict[str, Any] = {
    "mode": "sample", "qpm": 120, "repeats": 1, "present": False, "seed": 1, "temperature": 0.5,
    "n_var": 3, "similar_on": False, "similarity": 0.7, "sim_base": None, "latent_base": "random",
    "latent_dirs": None, "steps": 7, "method": "slerp", "interp_a": None, "interp_b": None,
    "interp_step": 1, "grid_n": 5, "corner_0": None, "corner_1": None, "corner_2": None,
    "corner_3": None, "grid_row": 1, "grid_col": 1, "switch_at": "bar", "refine": True, "even_steps": True,
    "playable": True,
    **feel.DEFAULTS,
}
CHOICE_KEYS = ("sim_base", "latent_base", "interp_a", "interp_b", "corner_0", "corner_1", "corner_2", "corner_3")


@dataclass(frozen=True)
class Context:
    """What every mode needs, resolved once per full run."""

    mode: str
    model: Any  # TrainedModel or None
    pick: core.ModelPick | None
    qpm: int
    repeats: int
    present: bool

    @property
    def roll_height(self) -> int:
        return 320 if self.present else 260


# -- cached resources ------------------------------------------------------------------------
def _warm_up() -> None:
    """Load the soundfont (ctypes releases the GIL) while the main thread imports torch."""
    from musicvae.media.audio import AudioError, default_synth

    try:
        default_synth()
    except AudioError as error:  # get_synth() also shows it in the page
        log.warning("no audio: %s", error)
    except Exception:
        log.exception("loading the synth in the background failed")


@st.cache_resource(show_spinner=False)
def start_warm_up() -> threading.Thread:
    """Start :func:`_warm_up` once per process, on the first page run (importing this module starts nothing)."""
    thread = threading.Thread(target=_warm_up, name="musicvae-warm-up", daemon=True)
    thread.start()
    return thread


@st.cache_resource(show_spinner=False)
def get_synth():
    """(synth, None) or (None, the reason there is no audio)."""
    from musicvae.media.audio import AudioError, default_synth

    try:
        return default_synth(), None
    except AudioError as error:
        return None, str(error)


@st.cache_resource(show_spinner=False)
def get_presets() -> list[core.Preset]:
    return core.load_presets()


@st.cache_data(max_entries=48, show_spinner=False)  # ~0.35 MB each at 120 qpm
def _wav(hits: bytes, velocities: bytes | None, steps: int, qpm: float, repeats: int, loop: bool,
         offsets: bytes | None = None) -> bytes:
    import numpy as np

    from musicvae.media.audio import render_pattern

    shape = (steps, NUM_CLASSES)
    vel = None if velocities is None else np.frombuffer(velocities, dtype=np.uint8).reshape(shape)
    off = None if offsets is None else np.frombuffer(offsets, dtype=np.float32).reshape(shape)
    pattern = DrumPattern(np.frombuffer(hits, dtype=bool).reshape(shape), vel, qpm, offsets=off)
    return render_pattern(pattern, qpm, repeats, loop=loop, synth=get_synth()[0])


def wav_of(pattern: DrumPattern, qpm: float, repeats: int = 1, loop: bool = True) -> bytes | None:
    """Cached WAV of a groove, or None (with an error shown) when there is no synth or it fails."""
    from musicvae.media.audio import AudioError

    synth, error = get_synth()
    if synth is None:
        st.error(f"No audio: {error}")
        return None
    vel = None if pattern.velocities is None else pattern.velocities.tobytes()
    off = None if pattern.offsets is None else pattern.offsets.tobytes()
    try:
        return _wav(pattern.hits.tobytes(), vel, pattern.num_steps, float(qpm), int(repeats), loop, off)
    except AudioError as error:  # e.g. a soundfont whose kit renders silence: say so, never a traceback
        st.error(f"No audio: {error}")
        return None


@st.cache_data(max_entries=64, show_spinner=False)
def parse_upload(data: bytes, name: str, drum_channel: int | None = None) -> core.UploadRead:
    return core.read_upload(data, name, drum_channel)


# -- state and URL ---------------------------------------------------------------------------
def init_state() -> None:
    start_warm_up()  # the soundfont loads while the sidebar loads the model
    state = st.session_state
    first = "_restored" not in state
    for key, value in DEFAULTS.items():
        if key not in state:
            state[key] = value
    presets = {p.key for p in get_presets()}
    defaults = [f"preset:{k}" for name in DEFAULT_PRESETS for k in sorted(presets) if k.split("_")[0] == name]
    defaults = defaults or [f"preset:{k}" for k in sorted(presets)]
    if defaults:
        for key, index in (("sim_base", 0), ("interp_a", 0), ("interp_b", 1), ("corner_0", 0), ("corner_1", 1),
                           ("corner_2", 2), ("corner_3", 3)):
            if state[key] is None:
                state[key] = defaults[index % len(defaults)]
    if first:
        restore_from_url(presets)
        state["_restored"] = True
        state["uploaded"] = {}
        state["pinned"] = {}
    for key in list(state.keys()):  # keep the values of widgets that are not drawn this run
        if key in DEFAULTS or str(key).startswith(("lat_", "model_", "win_")):
            state[key] = state[key]


def restore_from_url(preset_keys: set[str]) -> None:
    qp, state = st.query_params, st.session_state
    if qp.get("mode") in core.MODES:
        state["mode"] = qp["mode"]
    state["seed"] = core.parse_number(qp.get("seed"), int, 0, 2**31 - 1, state["seed"])
    state["temperature"] = core.parse_number(qp.get("temperature"), float, 0.1, 2.0, state["temperature"])
    state["qpm"] = core.parse_number(qp.get("tempo"), int, 60, 200, state["qpm"])
    state["steps"] = core.parse_number(qp.get("steps"), int, 3, 16, state["steps"])
    state["grid_n"] = core.parse_number(qp.get("grid"), int, 3, 11, state["grid_n"])
    state["n_var"] = core.parse_number(qp.get("n"), int, 1, 6, state["n_var"])
    if qp.get("method") in ("slerp", "lerp"):
        state["method"] = qp["method"]
    state["even_steps"] = qp.get("spacing") != "uniform"
    state["refine"] = qp.get("refine") != "0"
    state["playable"] = qp.get("playable") != "0"
    feel.restore(qp, state)
    state["present"] = qp.get("present") in ("1", "true", "yes")
    state["repeats"] = core.parse_number(qp.get("repeats"), int, 1, 4, state["repeats"])
    if qp.get("switch") in ("bar", "beat"):
        state["switch_at"] = qp["switch"]
    for mode, role in core.parse_models(qp.get("model")).items():
        state[f"model_{mode}"] = role
    lat = core.parse_latent(qp.get("lat"))
    if lat:
        state["latent_dirs"] = list(lat)
        for key, value in lat.items():
            state[f"lat_{key}"] = value
    cell = core.parse_cell(qp.get("cell"))
    if cell:
        state["grid_row"], state["grid_col"] = cell
    puck = core.parse_puck(qp.get("puck"))
    if puck:
        state["grid_puck"], state["grid_source"] = list(puck), "puck"
    for param, key in (("a", "interp_a"), ("b", "interp_b"), ("base", "sim_base")):
        if qp.get(param) in preset_keys:
            state[key] = f"preset:{qp[param]}"
    corners = [c for c in (qp.get("corners") or "").split(",") if c]
    for i, corner in enumerate(corners[:4]):
        if corner in preset_keys:
            state[f"corner_{i}"] = f"preset:{corner}"


def sync_url() -> None:
    """Mirror the restorable state into the URL (only what changed, so history stays quiet)."""
    state = st.session_state
    wanted = {
        "mode": state["mode"], "seed": str(state["seed"]), "temperature": f"{state['temperature']:g}",
        "tempo": str(state["qpm"]), "steps": str(state["steps"]), "method": state["method"],
        "grid": str(state["grid_n"]), "n": str(state["n_var"]),
    }
    for param, key in (("a", "interp_a"), ("b", "interp_b"), ("base", "sim_base")):
        if str(state[key]).startswith("preset:"):
            wanted[param] = state[key].split(":", 1)[1]
    corners = [state[f"corner_{i}"] for i in range(4)]
    if all(str(c).startswith("preset:") for c in corners):
        wanted["corners"] = ",".join(c.split(":", 1)[1] for c in corners)
    if state["present"]:
        wanted["present"] = "1"
    wanted["repeats"] = str(state["repeats"])
    wanted["switch"] = state["switch_at"]
    if not state["even_steps"]:
        wanted["spacing"] = "uniform"
    if not state["refine"]:
        wanted["refine"] = "0"
    if not state["playable"]:
        wanted["playable"] = "0"
    wanted.update(feel.url_params(state))
    models = {m: state[f"model_{m}"] for m in core.MODES if state.get(f"model_{m}") not in (None, core.MODE_ROLES[m])}
    if models:
        wanted["model"] = core.format_models(models)
    if state.get("latent_dirs"):
        wanted["lat"] = core.format_latent({k: float(state.get(f"lat_{k}", 0.0)) for k in state["latent_dirs"]})
    wanted["cell"] = f"{state['grid_row']},{state['grid_col']}"
    if state.get("grid_source") == "puck" and state.get("grid_puck"):
        wanted["puck"] = ",".join(f"{v:.2f}" for v in state["grid_puck"])
    qp = st.query_params
    for param in [p for p in qp if p not in wanted]:
        del qp[param]
    for param, value in wanted.items():
        if qp.get(param) != value:
            qp[param] = value


def upcoming_seed() -> int:
    """The seed "New seed" (or N) will pick: drawn ahead, so a mode can decode its groove ahead and the
    looper switch to it on the key press itself (see :func:`musicvae.app.stage.with_next`)."""
    state = st.session_state
    if state.get("next_seed") is None or state["next_seed"] == state.get("seed"):
        state["next_seed"] = random.randrange(0, 100_000)
    return int(state["next_seed"])


def new_seed() -> None:
    st.session_state["seed"] = upcoming_seed()
    del st.session_state["next_seed"]  # the run after draws the one after


# -- the groove library (presets, uploads, pinned samples) -----------------------------------
def library() -> dict[str, tuple[str, DrumPattern]]:
    items: dict[str, tuple[str, DrumPattern]] = {}
    for key, (label, pattern) in st.session_state.get("pinned", {}).items():
        items[key] = (label, pattern)
    for digest, entry in st.session_state.get("uploaded", {}).items():
        index = st.session_state.get(f"win_{digest}", entry["default"])
        index = index if 0 <= index < len(entry["windows"]) else entry["default"]
        window = entry["windows"][index]
        items[f"upload:{digest}"] = (f"⬆ {entry['name']} · bars {window_bars(window)}", window)
    for preset in get_presets():
        items[f"preset:{preset.key}"] = (f"♪ {preset.name}", preset.pattern)
    return items


def window_bars(window: DrumPattern) -> str:
    return window.source.rsplit("bars ", 1)[-1] if "bars " in window.source else "1-4"


def pick_groove(label: str, key: str, items: dict[str, tuple[str, DrumPattern]], extra: dict | None = None) -> str:
    """A select box over the library; returns the chosen key."""
    options = {**(extra or {}), **{k: v[0] for k, v in items.items()}}
    if st.session_state.get(key) not in options:
        st.session_state[key] = next(iter(options))
    return st.selectbox(label, list(options), format_func=options.__getitem__, key=key)


def md_text(text: str) -> str:
    """Text shown through markdown, literally."""
    return _escape(text)


def html_text(text: str) -> str:
    import html

    return html.escape(text, quote=False)


def link_notice(keys: list[str], items: dict[str, tuple[str, DrumPattern]]) -> None:
    """Say when the scene holds grooves a shared link cannot carry (uploads, kept samples)."""
    local = [items[k][0] for k in dict.fromkeys(keys) if k in items and not str(k).startswith("preset:")]
    if local:
        st.caption("🔗 A shared link of this page cannot carry " + ", ".join(md_text(x) for x in local)
                   + ": it opens with a preset groove in that place (uploads and kept grooves stay in this tab).")


def pin(label: str, pattern: DrumPattern) -> None:
    pinned = st.session_state.setdefault("pinned", {})
    pinned[f"pin:{len(pinned) + 1}"] = (f"★ {label}", pattern)


def _escape(text: str) -> str:
    return "".join("\\" + ch if ch in "\\`*_{}[]()#+-.!|<>~$" else ch for ch in text)


def uploads_ui() -> None:
    """Sidebar uploader: errors inline, a window select box for long files; files stay in memory."""
    files = st.file_uploader(
        "Your MIDI grooves", accept_multiple_files=True, key="uploads",
        help=f"Drum MIDI files ({', '.join('.' + t for t in UPLOAD_TYPES)}); any other file gets a one-line reason "
        "(the loader reads the content, not the name). Long files offer their 4-bar windows. Files stay in "
        "memory: nothing is written to disk.",
    )
    state = st.session_state
    current: dict[str, dict] = {}
    for upload in files or []:
        data = upload.getvalue()
        digest = hashlib.sha1(data).hexdigest()[:12]
        read = parse_upload(data, upload.name, state.get(f"drums_{digest}"))
        offer = core.drum_channel_offer(read, state.get(f"drums_{digest}"))
        if offer:  # no notes on channel 10: the user may say which channel is the drums (re-reads the file)
            st.selectbox(f"Drums of {upload.name}", [None, *offer], key=f"drums_{digest}", on_change=state.pop,
                         args=(f"win_{digest}", None), format_func=lambda c: "found automatically" if c is None
                         else f"treat channel {c} as drums")
        loaded, error = read.loaded, read.reason
        if error:
            st.error(f"**{_escape(upload.name)}**: {error}")
            continue
        current[digest] = {"name": upload.name, "windows": loaded.windows, "default": loaded.default_index,
                           "notices": loaded.notices}
        if len(loaded.windows) > 1:
            if f"win_{digest}" not in state:
                state[f"win_{digest}"] = loaded.default_index
            # the label is plain text for screen readers; the visible line is escaped markdown
            st.caption(f"Window of {_escape(upload.name)}")
            st.selectbox(f"Window of {upload.name}", range(len(loaded.windows)), key=f"win_{digest}",
                         label_visibility="collapsed",
                         format_func=lambda i, w=loaded.windows: f"bars {window_bars(w[i])} ({w[i].num_hits} hits)")
        for notice in loaded.notices:
            st.caption(f"{_escape(upload.name)}: {notice}")
    old = state.get("uploaded", {})
    new = [d for d in current if d not in old]
    state["uploaded"] = current
    gone = {f"upload:{d}" for d in old if d not in current}
    for line in core.fill_removed(state, gone, {k: v[0] for k, v in library().items()}) if gone else []:
        st.info(line)  # a removed upload never leaves two choices on one groove
    if new:
        _assign_new_uploads(list(current))


def _assign_new_uploads(digests: list[str]) -> None:
    """Fresh uploads become the grooves of every mode (the last two: A and B, the last four: corners)."""
    state = st.session_state
    keys = [f"upload:{d}" for d in digests]
    state["sim_base"] = keys[-1]
    state["latent_base"] = keys[-1]
    if state["mode"] == "sample":
        state["similar_on"] = True
    if len(keys) >= 2:
        state["interp_a"], state["interp_b"] = keys[-2], keys[-1]
    else:
        state["interp_b"] = keys[-1]
    for i, key in enumerate(keys[-4:]):
        state[f"corner_{i}"] = key


# -- sidebar -----------------------------------------------------------------------------------
def sidebar() -> Context:
    state = st.session_state
    with st.sidebar:
        st.title("MusicVAE drums")
        st.radio("Mode", list(core.MODES), format_func=core.MODES.__getitem__, key="mode")
        mode = state["mode"]
        st.slider("Tempo (qpm)", 60, 200, key="qpm")
        st.radio("New grooves start at the next", ["bar", "beat"], key="switch_at", horizontal=True,
                 help="Where the looper switches to a new groove (it never stops).")
        st.slider("Repeats in the WAV export", 1, 4, key="repeats")
        uploads_ui()
        pick = model_picker(mode, state["present"])
        if not state["present"]:
            st.toggle("Refine encodings of your grooves", key="refine",
                      help="Up to 1 s of gradient steps on z after the encoder, so uploads, presets and kept "
                           "grooves come back closer to how they were played (off: the plain encoder).")
            st.toggle("Playable grooves", key="playable",
                      help="Sample never plays a step needing more than two hands (kick and hi-hat pedal are the "
                           "feet); off: the model's raw decoding.")
        model, state["_model_error"] = (models.load_model(core.model_key(pick.path), str(pick.path)) if pick
                                        else (None, None))
        feel.sidebar_controls(state["present"])
        synth, error = get_synth()
        if error:
            st.error(f"No audio: {error}")
        elif not state["present"]:
            st.caption(f"Sound: {synth.description}")
        st.toggle("Presentation mode", key="present", help="Wide and big, developer controls hidden; "
                  "the URL keeps the scene so a reload restores it.")
        if not state["present"]:
            about_panel()
    return Context(mode, model, pick, int(state["qpm"]), int(state["repeats"]), bool(state["present"]))


def model_picker(mode: str, present: bool) -> core.ModelPick | None:
    key = f"model_{mode}"
    if key not in st.session_state:
        st.session_state[key] = core.MODE_ROLES[mode]
    if not present:
        st.radio("Model", list(core.ROLES), format_func=core.ROLE_LABELS.__getitem__, key=key, horizontal=True)
        st.caption(core.ROLES[st.session_state[key]][1])
    pick = core.pick_model(st.session_state[key])
    if pick and pick.fallback and not present:
        st.caption(f"⚠ that model is not installed; using `{pick.name}` instead.")
    return pick


def about_panel() -> None:
    with st.expander("About"):
        st.markdown("A PyTorch port of Magenta's hierarchical **MusicVAE** for 4-bar drum grooves (9 instruments, "
                    "16th notes), trained on the Groove MIDI Dataset.")
        for role, (name, _) in core.ROLES.items():
            folder = core.model_dir(name)
            if folder is None:
                st.markdown(f"**{core.ROLE_LABELS[role]}**: `{name}` not installed.")
                continue
            metrics = core.headline_metrics(folder)
            split = metrics.pop("split", "")
            numbers = ", ".join(f"{label} {value:.3g}" if isinstance(value, float) else f"{label} {value}"
                                for label, value in metrics.items()) or "no metrics recorded"
            st.markdown(f"**{core.ROLE_LABELS[role]}**: `{name}`: {numbers}" + (f" ({split} split)" if split else ""))
        st.caption("Preset grooves and training data: Groove MIDI Dataset v1.0.0, Gillick et al. (Google Magenta, "
                   "2019), CC BY 4.0 (see assets/presets/CREDITS.md).")


# -- showing grooves -----------------------------------------------------------------------------
def show_groove(ctx: Context, pattern: DrumPattern, key: str, title: str = "", height: int | None = None,
                downloads: bool = True, caption: str = "", colorbar: bool = True, play=None,
                editable: bool = False) -> None:
    """Piano roll, a one-line summary, the play toggle (``play(column)``) and MIDI/WAV downloads.

    Listening goes through the screen's one looper (:mod:`musicvae.app.stage`); the WAV is made
    only when its download is clicked, so a slider move renders no audio file.
    """
    from musicvae.media.plots import piano_roll

    figure = piano_roll(pattern, title, height or ctx.roll_height, colorbar=colorbar, editable=editable, qpm=ctx.qpm)
    extra = {"on_select": "rerun", "selection_mode": "points"} if editable else {}  # a click toggles a hit
    st.plotly_chart(figure, key=f"roll_{key}", config={"displayModeBar": False}, theme=None, **extra)
    st.caption(caption or core.describe(pattern, ctx.qpm))
    if not (downloads or play):
        return
    columns = st.columns(3 if downloads and play else 2 if downloads else 1)
    if play:
        play(columns[0])
    if downloads:
        stem = core.safe_file_stem(title or key)
        qpm, repeats = ctx.qpm, ctx.repeats
        left, right = columns[-2], columns[-1]
        left.download_button("⬇ MIDI", lambda: pattern.to_midi_bytes(qpm), f"{stem}.mid", "audio/midi",
                             key=f"dl_mid_{key}", on_click="ignore", width="stretch")  # made on click only
        if get_synth()[0] is not None:
            right.download_button("⬇ WAV", lambda: wav_bytes(pattern, qpm, repeats), f"{stem}.wav", "audio/wav",
                                  key=f"dl_wav_{key}", on_click="ignore", width="stretch")


def wav_bytes(pattern: DrumPattern, qpm: float, repeats: int = 1) -> bytes:
    """The WAV export (the same file as before the looper: looping render, cached)."""
    vel = None if pattern.velocities is None else pattern.velocities.tobytes()
    off = None if pattern.offsets is None else pattern.offsets.tobytes()
    return _wav(pattern.hits.tobytes(), vel, pattern.num_steps, float(qpm), int(repeats), True, off)


@st.cache_resource(show_spinner=False)
def get_kit():
    """The looper's one-shot drum kit (rendered once per soundfont, then cached on disk)."""
    from musicvae.media.drumkit import load_kit

    return load_kit(get_synth()[0])


def no_model_notice() -> None:
    st.warning(st.session_state.get("_model_error") or core.no_model_message(), icon="⚠️")


class Timer:
    """Wall-clock milliseconds of named steps, shown as a caption outside presentation mode."""

    def __init__(self) -> None:
        self.marks: list[tuple[str, float]] = []
        self._start = time.perf_counter()

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self.marks.append((name, (now - self._start) * 1000))
        self._start = now

    def show(self, ctx: Context) -> None:
        if not ctx.present and self.marks:
            st.caption(" · ".join(f"{name} {ms:.0f} ms" for name, ms in self.marks))
