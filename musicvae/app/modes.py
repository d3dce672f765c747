"""Sample mode and the helpers every mode shares (Interpolate: interpolate.py, Grid: grid.py, Latent: latent.py).

Each mode is an ``st.fragment``, so its controls rerun only itself; each has one looper (stage.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging

import numpy as np
import streamlit as st

from musicvae.app import core, feel, models, ui
from musicvae.app.stage import Stage, slider_bank, with_next
from musicvae.media.audio import AudioError
from musicvae.pattern import NUM_CLASSES, DrumPattern

log = logging.getLogger(__name__)

DECODE_SEED_OFFSET = 7919  # decode randomness is seeded apart from the z draw
TEMPERATURE_MIN, TEMPERATURE_MAX, TEMPERATURE_STEP = 0.1, 2.0, 0.05  # the temperature slider (Sample, Latent)


# -- cached model calls (the model itself is excluded from hashing; its key stands in) ------------
def _grids(hits: bytes, steps: int) -> np.ndarray:
    """Stacked hit grids from their bytes: [N, steps, NUM_CLASSES] (steps from the model's config)."""
    return np.frombuffer(hits, dtype=bool).reshape(-1, steps, NUM_CLASSES)


@st.cache_data(max_entries=128, show_spinner=False)
def _sample(model_key: str, n: int, temperature: float, seed: int, _model, playable: bool = True) -> list[DrumPattern]:
    return _model.sample(n, temperature, seed, playable=playable)


REFINE_BUDGET_S = 1.0  # per call: a user groove is encoded refined for at most this long


def refining() -> bool:
    """Whether user grooves are encoded refined (the sidebar switch; on by default)."""
    return bool(st.session_state.get("refine", True))


def user_refine(on: bool):
    """The refinement settings for user grooves (gradient steps on z within a time budget), or None."""
    from musicvae.model.refine import RefineSettings

    return RefineSettings(steps=200, time_budget_s=REFINE_BUDGET_S) if on else None


@st.cache_data(max_entries=64, show_spinner=False)
def _similar(model_key: str, hits: bytes, refine: bool, qpm: float, n: int, similarity: float, temperature: float,
             seed: int, _model, playable: bool = True, _base: DrumPattern | None = None) -> list[DrumPattern]:
    """``api.vary`` from the groove's anchored code (encoded once, cached by :func:`_anchored`), so a new
    temperature (and the temperature slider's banked neighbours) costs a decode, not an encode; the anchor
    weighs ``fade(similarity)``: similarity 1 is the groove itself.  ``_base`` is admitted by playable
    decoding (its hits stand for it in the cache key)."""
    [groove] = _anchored(model_key, hits, refine, _model)
    return _model.vary(groove, n, similarity, temperature, seed, qpm=qpm, playable=playable,
                       admit=None if _base is None else [_base])


@st.cache_data(max_entries=64, show_spinner=False)
def _anchored(model_key: str, hits: bytes, refine: bool, _model) -> list:
    """Each groove's code (refined when the switch is on) and anchor (``api.Anchored``): what every mode
    decodes a user groove from, so it plays back exactly where it enters a morph, grid, variation or slider."""
    patterns = [DrumPattern(h) for h in _grids(hits, _model.num_steps)]
    return _model.encode_anchored(patterns, user_refine(refine))


def encode_anchored(ctx: ui.Context, patterns: list[DrumPattern]) -> list:
    """Each groove's :class:`musicvae.api.Anchored` (cached)."""
    hits = np.stack([p.hits for p in patterns]).tobytes()
    return _anchored(core.model_key(ctx.pick.path), hits, refining(), ctx.model)


def encode_mu(ctx: ui.Context, patterns: list[DrumPattern]) -> np.ndarray:
    """Each groove's code (refined when the switch is on), cached: the anchored encoding's codes."""
    return np.stack([g.code.numpy() for g in encode_anchored(ctx, patterns)])


@st.cache_data(max_entries=64, show_spinner=False)
def _reconstruct(model_key: str, hits: bytes, refine: bool, _model) -> list[DrumPattern]:
    return _model.reconstruct([DrumPattern(h) for h in _grids(hits, _model.num_steps)], user_refine(refine))


def reconstruct(ctx: ui.Context, patterns: list[DrumPattern]) -> list[DrumPattern]:
    """The model's greedy version of each groove, from the same code the modes use (cached)."""
    hits = np.stack([p.hits for p in patterns]).tobytes()
    return _reconstruct(core.model_key(ctx.pick.path), hits, refining(), ctx.model)


def closeness(ctx: ui.Context, named: list[tuple[str, DrumPattern]]) -> None:
    """One line: how much of each source groove the model's own version plays back (hit F1, in words)."""
    if ctx.model is None or not named:
        return
    recon = reconstruct(ctx, [p for _, p in named])
    parts = [f"{100 * core.reconstruction_scores(p, r)['hit_f1']:.0f}% of {name}"
             for (name, p), r in zip(named, recon, strict=True)]
    st.caption("How close the model's version is: it plays back " + ", ".join(parts) + " (hit F1 of its "
               "reconstruction)." if not ctx.present else "The model plays back " + ", ".join(parts) + ".")


def temperature_and_seed(ctx: ui.Context, seed_label: str = "Seed") -> None:
    if ctx.present:  # no seed box: no gap next to "New seed"
        left, right = st.columns([4, 1], vertical_alignment="bottom")
        mid = None
    else:
        left, mid, right = st.columns([3, 2, 1], vertical_alignment="bottom")
    left.slider("Temperature", TEMPERATURE_MIN, TEMPERATURE_MAX, step=TEMPERATURE_STEP, key="temperature",
                help="Randomness of the decoder: low = safe and repetitive, high = wild.")
    if mid is not None:
        mid.number_input(seed_label, 0, 2**31 - 1, step=1, key="seed")
    right.button("New seed", on_click=ui.new_seed, key="new_seed_btn", width="stretch", help="Or press N.")


# -- Sample --------------------------------------------------------------------------------------
def _similar_context(ctx: ui.Context) -> ui.Context:
    """"Similar to" encodes a groove: with the high-KL model (core.SIMILAR_ROLE), whatever Sample's model is."""
    pick = core.pick_model(core.SIMILAR_ROLE) if ctx.model is not None else None
    if pick is None or pick.path == ctx.pick.path:
        return ctx
    model = models.get_model(core.model_key(pick.path), str(pick.path))
    return ctx if model is None else dataclasses.replace(ctx, model=model, pick=pick)


def _sample_command(command: str) -> None:
    if command == "new":
        ui.new_seed()


@st.fragment
def sample_ui(ctx: ui.Context) -> None:
    state = st.session_state
    st.header("Sample")
    stage = Stage(ctx, "sample", "sample_0")
    temperature_and_seed(ctx)
    left, right = st.columns([1, 2], vertical_alignment="bottom")
    left.slider("Variations", 1, 6, key="n_var")
    right.toggle("Similar to a groove", key="similar_on",
                 help="Encode a groove, then mix its z with random draws (Magenta.js `similar`).")
    items = ui.library()
    if state["similar_on"]:
        a, b = st.columns(2)
        with a:
            base_key = ui.pick_groove("Groove to vary", "sim_base", items)
        b.slider("Similarity", 0.0, 1.0, step=0.05, key="similarity", help="1 = the groove itself, 0 = random")
    n, temperature, seed = int(state["n_var"]), round(float(state["temperature"]), 4), int(state["seed"])
    playable = bool(state.get("playable", True))  # the sidebar's "Playable grooves" switch
    timer = ui.Timer()
    grooves_at = None  # (temperature, similarity) -> the variations the server plays (decoded, with feel when on)
    similarity, code = None, ""
    if ctx.model is None:
        ui.no_model_notice()
        presets = ui.get_presets()
        chosen = [presets[(seed + i) % len(presets)] for i in range(n)] if presets else []
        patterns, titles = [p.pattern for p in chosen], [p.name for p in chosen]
        st.caption("Showing preset grooves (picked by the seed) until a model is installed.")
    else:
        code = ctx.pick.name
        if state["similar_on"]:
            base, sim_ctx = items[base_key][1], _similar_context(ctx)
            mu = encode_mu(sim_ctx, [base]).astype(np.float32).tobytes()
            base_hits, refine = base.hits[None].tobytes(), refining()
            similarity = round(float(state["similarity"]), 4)  # as the bank's neighbours are: the same decode
            code = f"{sim_ctx.pick.name} {hashlib.sha1(mu).hexdigest()[:8]}"  # the groove's code, refined or not

            def decode(t: float, s: float | None, seed: int) -> list[DrumPattern]:
                return _similar(core.model_key(sim_ctx.pick.path), base_hits, refine, base.qpm, n, s, t, seed,
                                sim_ctx.model, playable, base)
            st.caption(f"Encoded and varied with `{sim_ctx.pick.name}`: the interpolation model (high KL) "
                       "reconstructs grooves best.")
            titles = [f"similar {i + 1} (seed {seed})" for i in range(n)]
        else:
            def decode(t: float, s: float | None, seed: int) -> list[DrumPattern]:
                return _sample(core.model_key(ctx.pick.path), n, t, seed, ctx.model, playable)
            titles = [f"sample {i + 1} (seed {seed})" for i in range(n)]

        def grooves_at(t: float, s: float | None, at_seed: int = seed) -> list[DrumPattern]:  # with feel, when on
            return feel.humanize(decode(t, s, at_seed))
        patterns = grooves_at(temperature, similarity)
        timer.mark("decode" if not feel.active() else "decode + humanize")
    for i, pattern in enumerate(patterns):  # the looper gets its groove before the rolls are drawn
        stage.offer(f"sample_{i}", titles[i], pattern)
    if state["similar_on"] and ctx.model is not None:
        stage.offer("sim_src", f"the groove varied: {items[base_key][0]}", items[base_key][1])
    banked = _slider_banks(stage, grooves_at, temperature, similarity, seed, n, code)
    if banked:
        timer.mark("neighbours")
    stage.mount(_sample_command, **banked)
    per_row = 1 if n == 1 else (2 if n in (2, 4) else 3)
    for row in range(0, len(patterns), per_row):
        columns = st.columns(per_row)
        for i in range(row, min(row + per_row, len(patterns))):
            with columns[i - row]:
                height = ctx.roll_height if per_row == 1 else int(ctx.roll_height * 0.75)
                stage.show(patterns[i], f"sample_{i}", titles[i], height=height, colorbar=per_row == 1)
                if ctx.model is not None and st.button("★ Keep for Interpolate/Grid", key=f"pin_{i}"):
                    ui.pin(f"{titles[i]}, T={temperature:g}", patterns[i])
                    st.toast(f"{titles[i]} is now in the groove lists of every mode.")
    if state["similar_on"] and ctx.model is not None:  # the groove being varied: seen and heard too
        label = items[base_key][0]
        stage.show(items[base_key][1], "sim_src", f"the groove varied: {label}", height=int(ctx.roll_height * 0.6),
                   downloads=False)
        closeness(_similar_context(ctx), [("its hits", items[base_key][1])])
        ui.link_notice([base_key], items)
    timer.mark("rolls")
    timer.show(ctx)
    ui.sync_url()


def _slider_banks(stage: Stage, grooves_at, temperature: float, similarity: float | None, seed: int, n: int,
                  code: str) -> dict:
    """``bank``/``nav``/``tag``/``banked`` for the temperature slider (and the similarity slider when
    "Similar to a groove" is on): the variation the looper plays at each slider's neighbouring values,
    exactly as the rerun will make it (so the browser switches on the slider's move).  A tag names the
    whole state (both sliders' values, the variation, n, seed, model and the varied groove's code, the
    feel), so the two sliders' points never share a tag for different grooves.  N and "New seed" are
    banked too: the variation at :func:`ui.upcoming_seed`.  Nothing when the looper plays the groove
    being varied, or there is no model."""
    chosen = stage.chosen if stage.chosen in stage.grooves else stage.main
    if grooves_at is None or not chosen.startswith("sample_"):
        return {}
    index = int(chosen.removeprefix("sample_"))
    played = feel.current()
    feeling = "" if played is None else f", feel {played.variation:g}/{played.take}"

    def tag_of(t: float, s: float | None, at_seed: int = seed) -> str:
        salt = f"{chosen} of {n}, seed {at_seed}, {code}{feeling}"
        return f"temperature={t:g}" + ("" if s is None else f",similarity={s:g}") + f"|{salt}"

    bank, nav, tag = slider_bank("temperature", temperature, TEMPERATURE_STEP, TEMPERATURE_MIN, TEMPERATURE_MAX,
                                 lambda t: grooves_at(t, similarity)[index], tag_at=lambda t: tag_of(t, similarity))
    if similarity is not None:  # two more batch decodes (cached: after a step, one was a neighbour already)
        more, more_nav, _ = slider_bank("similarity", similarity, 0.05, 0.0, 1.0,
                                        lambda s: grooves_at(temperature, s)[index],
                                        tag_at=lambda s: tag_of(temperature, s))
        bank, nav = {**bank, **more}, {"sliders": nav["sliders"] + more_nav["sliders"]}
    upcoming = ui.upcoming_seed()  # N / "New seed": this variation at the next seed
    return with_next({"bank": bank, "nav": nav, "tag": tag, "banked": chosen},
                     grooves_at(temperature, similarity, upcoming)[index], tag_of(temperature, similarity, upcoming))


def _vel(pattern: DrumPattern) -> bytes | None:
    return None if pattern.velocities is None else pattern.velocities.tobytes()


def _off(pattern: DrumPattern) -> bytes | None:
    return None if pattern.offsets is None else pattern.offsets.tobytes()


@st.cache_data(max_entries=4, show_spinner=False)  # up to ~6 MB each
def _morph_wav(hits: tuple[bytes, ...], velocities: tuple[bytes | None, ...], qpm: int,
               offsets: tuple[bytes | None, ...] | None = None) -> bytes:
    from musicvae.media.audio import render_sequence

    offsets = offsets or (None,) * len(hits)
    patterns = [DrumPattern(np.frombuffer(h, dtype=bool).reshape(-1, NUM_CLASSES),
                            None if v is None else np.frombuffer(v, dtype=np.uint8).reshape(-1, NUM_CLASSES),
                            offsets=None if o is None else np.frombuffer(o, dtype=np.float32).reshape(-1, NUM_CLASSES))
                for h, v, o in zip(hits, velocities, offsets, strict=True)]
    return render_sequence(patterns, qpm, synth=ui.get_synth()[0])


def _zip_button(ctx: ui.Context, patterns: list[DrumPattern], names: list[str], what: str, key: str) -> None:
    synth, _ = ui.get_synth()
    if synth is None:
        return
    qpm = ctx.qpm

    def build() -> bytes:  # runs only when the button is clicked
        from musicvae.media.audio import render_pattern, render_sequence
        from musicvae.pattern import concatenate

        extra = {}
        try:
            if what == "interpolation":
                extra = {"morph.wav": render_sequence(patterns, qpm, synth),
                         "morph.mid": concatenate(patterns).to_midi_bytes(qpm)}
            return core.build_zip(patterns, names, qpm, lambda p: render_pattern(p, qpm, 1, synth=synth), extra)
        except AudioError as error:  # runs outside the page: the ZIP says why it has no audio
            log.warning("ZIP of the %s without audio: %s", what, error)
            return core.build_zip(patterns, names, qpm, None, {"NO_AUDIO.txt": f"{error}\n".encode()})

    st.download_button(f"⬇ ZIP of the whole {what} (MIDI + WAV per groove)", build, f"musicvae-{what}.zip",
                       "application/zip", key=key, on_click="ignore")


