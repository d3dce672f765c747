"""Sample, Interpolate and Grid: each an ``st.fragment``, so its controls rerun only itself (Latent: latent.py)."""

from __future__ import annotations

import logging

import numpy as np
import streamlit as st

from musicvae.app import core, ui
from musicvae.media.audio import AudioError
from musicvae.pattern import NUM_CLASSES, DrumPattern

log = logging.getLogger(__name__)

DECODE_SEED_OFFSET = 7919  # decode randomness is seeded apart from the z draw


# -- cached model calls (the model itself is excluded from hashing; its key stands in) ------------
def _grids(hits: bytes, steps: int) -> np.ndarray:
    """Stacked hit grids from their bytes: [N, steps, NUM_CLASSES] (steps from the model's config)."""
    return np.frombuffer(hits, dtype=bool).reshape(-1, steps, NUM_CLASSES)


@st.cache_data(max_entries=128, show_spinner=False)
def _sample(model_key: str, n: int, temperature: float, seed: int, _model) -> list[DrumPattern]:
    return _model.sample(n, temperature, seed)


@st.cache_data(max_entries=64, show_spinner=False)
def _similar(model_key: str, hits: bytes, n: int, similarity: float, temperature: float, seed: int, _model):
    base = DrumPattern(np.frombuffer(hits, dtype=bool).reshape(-1, NUM_CLASSES))
    return _model.similar(base, n, similarity, temperature, seed)


@st.cache_data(max_entries=64, show_spinner=False)
def _mu(model_key: str, hits: bytes, _model) -> np.ndarray:
    patterns = [DrumPattern(h) for h in _grids(hits, _model.num_steps)]
    _, mu, _ = _model.encode(patterns)
    return mu.numpy()


def encode_mu(ctx: ui.Context, patterns: list[DrumPattern]) -> np.ndarray:
    hits = np.stack([p.hits for p in patterns]).tobytes()
    return _mu(core.model_key(ctx.pick.path), hits, ctx.model)


def temperature_and_seed(ctx: ui.Context, seed_label: str = "Seed") -> None:
    left, mid, right = st.columns([3, 2, 1], vertical_alignment="bottom")
    left.slider("Temperature", 0.1, 2.0, step=0.05, key="temperature",
                help="Randomness of the decoder: low = safe and repetitive, high = wild.")
    if not ctx.present:
        mid.number_input(seed_label, 0, 2**31 - 1, step=1, key="seed")
    right.button("New seed", on_click=ui.new_seed, key="new_seed_btn", width="stretch")


# -- Sample --------------------------------------------------------------------------------------
@st.fragment
def sample_ui(ctx: ui.Context) -> None:
    state = st.session_state
    st.header("Sample")
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
    n, temperature, seed = int(state["n_var"]), float(state["temperature"]), int(state["seed"])
    timer = ui.Timer()
    if ctx.model is None:
        ui.no_model_notice()
        presets = ui.get_presets()
        chosen = [presets[(seed + i) % len(presets)] for i in range(n)] if presets else []
        patterns, titles = [p.pattern for p in chosen], [p.name for p in chosen]
        st.caption("Showing preset grooves (picked by the seed) until a model is installed.")
    elif state["similar_on"]:
        base = items[base_key][1]
        patterns = _similar(core.model_key(ctx.pick.path), base.hits.tobytes(), n, float(state["similarity"]),
                            temperature, seed, ctx.model)
        titles = [f"similar {i + 1} (seed {seed})" for i in range(n)]
    else:
        patterns = _sample(core.model_key(ctx.pick.path), n, temperature, seed, ctx.model)
        titles = [f"sample {i + 1} (seed {seed})" for i in range(n)]
    timer.mark("decode")
    per_row = 1 if n == 1 else (2 if n in (2, 4) else 3)
    for row in range(0, len(patterns), per_row):
        columns = st.columns(per_row)
        for i in range(row, min(row + per_row, len(patterns))):
            with columns[i - row]:
                height = ctx.roll_height if per_row == 1 else int(ctx.roll_height * 0.75)
                ui.show_groove(ctx, patterns[i], f"sample_{i}", titles[i], height=height, colorbar=per_row == 1)
                if ctx.model is not None and st.button("★ Keep for Interpolate/Grid", key=f"pin_{i}"):
                    ui.pin(f"{titles[i]}, T={temperature:g}", patterns[i])
                    st.toast(f"{titles[i]} is now in the groove lists of every mode.")
    timer.mark("roll + audio")
    timer.show(ctx)
    ui.sync_url()


# -- Interpolate ---------------------------------------------------------------------------------
@st.cache_data(max_entries=32, show_spinner=False)
def _interpolate(model_key: str, hits: bytes, steps: int, method: str, temperature: float, seed: int, _model):
    """(patterns, endpoint reconstructions at T=0) for the interpolation A -> B in mu space."""
    a, b = (DrumPattern(h) for h in _grids(hits, _model.num_steps))
    return _model.interpolate(a, b, steps, method, temperature, seed), _model.reconstruct([a, b])


def _clicked(chart_key: str, cols: int, last_key: str) -> int | None:
    """A new click on a mosaic chart (None when the selection did not change since last time)."""
    from musicvae.media.plots import mosaic_index

    selection = st.session_state.get(chart_key)
    points = list(selection["selection"]["points"]) if selection else []
    marker = repr(points)
    if marker == st.session_state.get(last_key):
        return None
    st.session_state[last_key] = marker
    return mosaic_index(points, cols)


@st.fragment
def interpolate_ui(ctx: ui.Context) -> None:
    state = st.session_state
    st.header("Interpolate")
    items = ui.library()
    left, right = st.columns(2)
    with left:
        a_key = ui.pick_groove("Groove A (start)", "interp_a", items)
    with right:
        b_key = ui.pick_groove("Groove B (end)", "interp_b", items)
    a, b = items[a_key][1], items[b_key][1]
    if ctx.model is None:
        ui.no_model_notice()
        left, right = st.columns(2)
        with left:
            ui.show_groove(ctx, a, "interp_a_in", items[a_key][0])
        with right:
            ui.show_groove(ctx, b, "interp_b_in", items[b_key][0])
        ui.sync_url()
        return
    c1, c2, c3 = st.columns([3, 2, 3], vertical_alignment="bottom")
    c1.slider("Steps (both ends included)", 3, 16, key="steps")
    c2.radio("Path", ["slerp", "lerp"], key="method", horizontal=True,
             help="slerp follows the sphere where the prior's mass is; lerp is a straight line.")
    c3.toggle("Show the real inputs at the ends", key="real_ends",
              help="Beat Blender does this: the ends play your grooves instead of the model's reconstructions.")
    temperature_and_seed(ctx)
    steps, temperature, seed = int(state["steps"]), float(state["temperature"]), int(state["seed"])
    timer = ui.Timer()
    hits = np.stack([a.hits, b.hits]).tobytes()
    patterns, recon = _interpolate(core.model_key(ctx.pick.path), hits, steps, state["method"], temperature,
                                   seed + DECODE_SEED_OFFSET, ctx.model)
    patterns = list(patterns)
    if state["real_ends"]:
        patterns[0], patterns[-1] = a, b
    timer.mark("encode + decode")
    score_a, score_b = core.reconstruction_scores(a, recon[0]), core.reconstruction_scores(b, recon[1])
    st.caption(f"Endpoint reconstruction (greedy): A {100 * score_a['step_accuracy']:.0f}% of steps exact, hit F1 "
               f"{score_a['hit_f1']:.2f} · B {100 * score_b['step_accuracy']:.0f}% of steps exact, hit F1 "
               f"{score_b['hit_f1']:.2f}")
    cols = min(steps, 8)
    clicked = _clicked("interp_strip", cols, "_interp_click")
    if clicked is not None and clicked < steps:
        state["interp_step"] = clicked + 1
    state["interp_step"] = min(max(int(state["interp_step"]), 1), steps)
    labels = ["A" if i == 0 else "B" if i == steps - 1 else str(i + 1) for i in range(steps)]
    from musicvae.media.plots import mosaic

    st.plotly_chart(mosaic(patterns, cols, labels, state["interp_step"] - 1,
                           cell_height=90 if ctx.present else 64, hover="step %{customdata[2]}: click to hear it"),
                    key="interp_strip", on_select="rerun", selection_mode="points", config={"displayModeBar": False},
                    theme=None)
    synth, _ = ui.get_synth()
    morph = None
    if synth is not None:
        try:
            morph = _morph_wav(tuple(p.hits.tobytes() for p in patterns), tuple(_vel(p) for p in patterns), ctx.qpm)
        except AudioError as error:
            st.error(f"No audio for the morph: {error}")
    if morph is not None:
        st.markdown(f"**The whole morph**: {steps} × 4 bars at {ctx.qpm} qpm, one after another "
                    f"({len(morph) / 1e6:.1f} MB WAV)")
        st.audio(morph, format="audio/wav")
    timer.mark("strip + morph audio")
    st.select_slider("Step to hear", list(range(1, steps + 1)), key="interp_step",
                     format_func=lambda i: labels[i - 1])
    step = int(state["interp_step"])
    ui.show_groove(ctx, patterns[step - 1], f"interp_step_{step}", f"step {labels[step - 1]} of {steps}")
    _zip_button(ctx, patterns, [f"step_{i + 1:02d}" for i in range(steps)], "interpolation", "interp_zip")
    timer.mark("step view")
    timer.show(ctx)
    ui.sync_url()


def _vel(pattern: DrumPattern) -> bytes | None:
    return None if pattern.velocities is None else pattern.velocities.tobytes()


@st.cache_data(max_entries=4, show_spinner=False)  # up to ~6 MB each
def _morph_wav(hits: tuple[bytes, ...], velocities: tuple[bytes | None, ...], qpm: int) -> bytes:
    from musicvae.media.audio import render_sequence

    patterns = [DrumPattern(np.frombuffer(h, dtype=bool).reshape(-1, NUM_CLASSES),
                            None if v is None else np.frombuffer(v, dtype=np.uint8).reshape(-1, NUM_CLASSES))
                for h, v in zip(hits, velocities, strict=True)]
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


# -- Grid ----------------------------------------------------------------------------------------
@st.cache_data(max_entries=16, show_spinner=False)
def _grid(model_key: str, hits: bytes, n: int, temperature: float, seed: int, _model) -> list[DrumPattern]:
    return _model.grid([DrumPattern(h) for h in _grids(hits, _model.num_steps)], n, temperature, seed)


@st.fragment
def grid_ui(ctx: ui.Context) -> None:
    from musicvae.media.plots import mosaic

    state = st.session_state
    st.header("Grid")
    items = ui.library()
    names = ("top left", "top right", "bottom left", "bottom right")
    corner_keys = []
    columns = st.columns(4)
    for i, name in enumerate(names):
        with columns[i]:
            corner_keys.append(ui.pick_groove(f"Corner {name}", f"corner_{i}", items))
    corners = [items[k][1] for k in corner_keys]
    if ctx.model is None:
        ui.no_model_notice()
        n, patterns = 2, corners
    else:
        c1, c2 = st.columns([2, 3], vertical_alignment="bottom")
        c1.slider("Grid size (N × N)", 3, 11, key="grid_n")
        c2.toggle("Show the real grooves in the corners", key="real_corners")
        temperature_and_seed(ctx)
        n = int(state["grid_n"])
        timer = ui.Timer()
        hits = np.stack([c.hits for c in corners]).tobytes()
        patterns = list(_grid(core.model_key(ctx.pick.path), hits, n, float(state["temperature"]),
                              int(state["seed"]) + DECODE_SEED_OFFSET, ctx.model))
        if state["real_corners"]:
            for corner, index in zip(corners, (0, n - 1, n * (n - 1), n * n - 1), strict=True):
                patterns[index] = corner
        timer.mark(f"decode {n * n}")
    clicked = _clicked("grid_chart", n, "_grid_click")
    if clicked is not None:
        state["grid_row"], state["grid_col"] = clicked // n + 1, clicked % n + 1
    state["grid_row"] = min(max(int(state["grid_row"]), 1), n)
    state["grid_col"] = min(max(int(state["grid_col"]), 1), n)
    cell = (state["grid_row"] - 1) * n + state["grid_col"] - 1
    st.caption("Click a cell (or use the selectors) to see and hear it.")
    st.plotly_chart(mosaic(patterns, n, None, cell, cell_height=72 if ctx.present else 52),
                    key="grid_chart", on_select="rerun", selection_mode="points", config={"displayModeBar": False},
                    theme=None)
    r, c = st.columns(2)
    r.selectbox("Row", list(range(1, n + 1)), key="grid_row")
    c.selectbox("Column", list(range(1, n + 1)), key="grid_col")
    title = f"grid cell row {state['grid_row']}, column {state['grid_col']}"
    ui.show_groove(ctx, patterns[cell], f"grid_{cell}", title)
    if ctx.model is not None:
        names = [f"cell_r{i // n + 1:02d}_c{i % n + 1:02d}" for i in range(n * n)]
        _zip_button(ctx, patterns, names, "grid", "grid_zip")
        st.caption(f"The ZIP holds {n * n} MIDI and WAV files (about {n * n * 0.35 * 120 / ctx.qpm:.0f} MB).")
        timer.mark("grid view")
        timer.show(ctx)
    ui.sync_url()
