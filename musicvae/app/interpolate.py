"""Interpolate: a morph from groove A to groove B, one strip of rolls, one looper.

The strip (all steps on one row) is the main control: a click, the step slider or the left/right
arrow keys pick the step the looper plays; A and B have their own rolls and play toggles.  Every
step goes to the looper as its bank (keys ``"cell:1,<step>"``, a one-row grid), so a click on the
strip or an arrow key switches in the browser and the rerun only confirms (not while the looper
walks the morph).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from musicvae.app import core, feel, ui
from musicvae.app.modes import (
    DECODE_SEED_OFFSET,
    _anchored,
    _grids,
    _morph_wav,
    _off,
    _vel,
    _zip_button,
    closeness,
    refining,
    temperature_and_seed,
)
from musicvae.app.stage import Stage, follow
from musicvae.pattern import DrumPattern

MAIN = "interp_view"


@st.cache_data(max_entries=32, show_spinner=False)
def _interpolate(model_key: str, hits: bytes, steps: int, method: str, temperature: float, seed: int,
                 refine: bool, spacing: str, _model):
    """(patterns, the model's own endpoint reconstructions at T=0) for the interpolation A -> B in z space;
    the ends are encoded once, anchored (refined when the switch is on), and serve both: the morph starts
    on A and ends on B exactly (the anchors fade along it), the reconstructions are the model's alone."""
    a, b = (DrumPattern(h) for h in _grids(hits, _model.num_steps))
    ends = _anchored(model_key, hits, refine, _model)
    return (_model.interpolate(a, b, steps, method, temperature, seed, spacing=spacing, ends=ends),
            _model.reconstruct([a, b], codes=ends))


def clicked(chart_key: str, cols: int, last_key: str) -> int | None:
    """A new click on a mosaic chart (None when the selection did not change since last time)."""
    from musicvae.media.plots import mosaic_index

    selection = st.session_state.get(chart_key)
    points = list(selection["selection"]["points"]) if selection else []
    marker = repr(points)
    if marker == st.session_state.get(last_key):
        return None
    st.session_state[last_key] = marker
    return mosaic_index(points, cols)


def _command(command: str) -> None:
    state = st.session_state
    if command.startswith("cell:"):  # the browser already plays this step (from its bank)
        try:
            step = int(command.removeprefix("cell:").split(",")[1])
        except (IndexError, ValueError):
            return
        state["interp_step"] = min(max(step, 1), int(state["steps"]))
        follow("interpolate", MAIN)
        return
    move = {"left": -1, "right": 1, "up": -1, "down": 1}.get(command)
    if move is not None:
        state["interp_step"] = min(max(int(state["interp_step"]) + move, 1), int(state["steps"]))
        follow("interpolate", MAIN)


def _settings(ctx: ui.Context):
    """Present mode folds the pickers and path settings away (the strip and the player stay on screen)."""
    return st.expander("Grooves, steps and path") if ctx.present else st.container()


@st.fragment
def interpolate_ui(ctx: ui.Context) -> None:
    state = st.session_state
    st.header("Interpolate")
    stage = Stage(ctx, "interpolate", MAIN)
    items = ui.library()
    box = _settings(ctx)
    with box:
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
            stage.show(a, "src_a", items[a_key][0])
        with right:
            stage.show(b, "src_b", items[b_key][0])
        stage.mount()
        ui.sync_url()
        return
    with box:
        c1, c2 = st.columns([3, 2], vertical_alignment="bottom")
        c1.slider("Steps (both ends included)", 3, 16, key="steps")
        c2.radio("Path", ["slerp", "lerp"], key="method", horizontal=True,
                 help="slerp follows the sphere where the prior's mass is; lerp is a straight line.")
        c2.toggle("Even steps", key="even_steps",
                  help="Each step changes about as many hits (otherwise equal steps along the path bunch the "
                       "changes where the model switches grooves).")
        temperature_and_seed(ctx)
    steps, temperature, seed = int(state["steps"]), float(state["temperature"]), int(state["seed"])
    timer = ui.Timer()
    hits = np.stack([a.hits, b.hits]).tobytes()
    patterns, recon = _interpolate(core.model_key(ctx.pick.path), hits, steps, state["method"], temperature,
                                   seed + DECODE_SEED_OFFSET, refining(),
                                   "even" if state["even_steps"] else "uniform", ctx.model)
    timer.mark("encode + decode")
    if feel.active():  # every step played with feel (the ends' hits are A's and B's: anchored)
        patterns = feel.humanize(patterns)
        timer.mark("humanize")
    patterns = list(patterns)
    if not ctx.present:
        score_a, score_b = core.reconstruction_scores(a, recon[0]), core.reconstruction_scores(b, recon[1])
        st.caption("The morph starts on A and ends on B exactly (anchored codes: see docs/models.md). "
                   f"The model's own reconstruction (greedy): A {100 * score_a['step_accuracy']:.0f}% of steps exact, "
                   f"hit F1 {score_a['hit_f1']:.2f} · B {100 * score_b['step_accuracy']:.0f}% of steps exact, "
                   f"hit F1 {score_b['hit_f1']:.2f}")
    cols = steps  # one row, whatever the number of steps
    hit = clicked("interp_strip", cols, "_interp_click")
    if hit is not None and hit < steps:
        state["interp_step"] = hit + 1
        follow("interpolate", MAIN)
    state["interp_step"] = min(max(int(state["interp_step"]), 1), steps)
    labels = ["A" if i == 0 else "B" if i == steps - 1 else str(i + 1) for i in range(steps)]
    step = int(state["interp_step"])
    stage.offer(MAIN, f"step {labels[step - 1]} of {steps}", patterns[step - 1])  # before the strip is drawn
    stage.offer("src_a", f"A (your input): {items[a_key][0]}", a)
    stage.offer("src_b", f"B (your input): {items[b_key][0]}", b)
    walk = bool(state.get("interp_follow"))
    bank = None if walk else {f"cell:1,{i + 1}": p for i, p in enumerate(patterns)}  # a one-row grid
    nav = {"n": steps, "rows": 1, "cols": steps, "row": 1, "col": step, "chart": "interp_strip",
           # the "Step to hear" slider too: its range input's value is the option's index
           "sliders": [{"key": "interp_step", "points": [[i, f"cell:1,{i + 1}", f"cell:1,{i + 1}"]
                                                         for i in range(steps)]}]}
    stage.mount(_command, list(patterns) if walk else None, bank=bank, nav=nav, tag=f"cell:1,{step}")
    from musicvae.media.plots import mosaic

    st.plotly_chart(mosaic(patterns, cols, labels, state["interp_step"] - 1, cell_height=90 if ctx.present else 64,
                           hover="step %{customdata[2]}: click to play it"),
                    key="interp_strip", on_select="rerun", selection_mode="points", config={"displayModeBar": False},
                    theme=None)
    step_col, follow_col = st.columns([4, 1], vertical_alignment="bottom")
    step_col.select_slider("Step to hear", list(range(1, steps + 1)), key="interp_step",
                           format_func=lambda i: labels[i - 1], on_change=follow, args=("interpolate", MAIN),
                           help="Or click the strip, or press ← / →.")
    follow_col.toggle("Walk the morph", key="interp_follow", on_change=follow, args=("interpolate", MAIN),
                      help="The looper walks A → B, one step per bar, round and round.")
    step = int(state["interp_step"])
    stage.show(patterns[step - 1], MAIN, f"step {labels[step - 1]} of {steps}")
    timer.mark("strip + step view")
    left, right = st.columns(2)
    small = int(ctx.roll_height * 0.6)
    with left:
        stage.show(a, "src_a", f"A (your input): {items[a_key][0]}", height=small, downloads=False, colorbar=False)
    with right:
        stage.show(b, "src_b", f"B (your input): {items[b_key][0]}", height=small, downloads=False, colorbar=False)
    closeness(ctx, [("A's hits", a), ("B's hits", b)])
    ui.link_notice([a_key, b_key], items)
    _morph_download(ctx, patterns, steps)
    _zip_button(ctx, patterns, [f"step_{i + 1:02d}" for i in range(steps)], "interpolation", "interp_zip")
    timer.show(ctx)
    ui.sync_url()


def _morph_download(ctx: ui.Context, patterns: list[DrumPattern], steps: int) -> None:
    """The whole morph as one WAV (made on click: listening is the looper's job)."""
    if ui.get_synth()[0] is None:
        return
    hits, vels, qpm = tuple(p.hits.tobytes() for p in patterns), tuple(_vel(p) for p in patterns), ctx.qpm
    offs = tuple(_off(p) for p in patterns)
    st.download_button(f"⬇ WAV of the whole morph ({steps} × 4 bars at {qpm} qpm, one after another)",
                       lambda: _morph_wav(hits, vels, qpm, offs), "musicvae-morph.wav", "audio/wav", key="morph_wav",
                       on_click="ignore")
