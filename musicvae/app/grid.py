"""Grid: four corner grooves blended bilinearly (Beat Blender), one looper.

The grid (left) and the chosen cell's roll (right) share one screen; a click on a cell or the
arrow keys move the cell, and the looper takes the new groove at the next bar.  Each corner has
its own roll and play toggle below; corner labels frame the grid.

Every cell's groove (humanized when that is on: the very grooves the cells play) goes to the looper
once as its bank (keys ``"cell:<row>,<col>"``): the browser switches on the arrow key, the click on a
cell or the puck's move (to the nearest cell) before the rerun, which then confirms with the same
groove and tag (``"cell:r,c"``, ``"puck:x,y"``); the puck's exact decode replaces the nearest cell's
groove when it arrives.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from musicvae.app import core, feel, ui
from musicvae.app.interpolate import clicked
from musicvae.app.modes import (
    DECODE_SEED_OFFSET,
    _anchored,
    _grids,
    _zip_button,
    closeness,
    refining,
    temperature_and_seed,
)
from musicvae.app.stage import Stage, follow
from musicvae.pattern import DrumPattern

MAIN = "grid_cell"
PATH_BARS = 8  # a drawn path is resampled to this many grooves, one per bar
NAMES = ("top left", "top right", "bottom left", "bottom right")


@st.cache_data(max_entries=16, show_spinner=False)
def _grid(model_key: str, hits: bytes, refine: bool, n: int, temperature: float, seed: int,
          _model) -> list[DrumPattern]:
    """The n x n grid from the corners' anchored codes (the same ones the pad mixes): the corner cells are
    the corner grooves, and each corner's anchor fades with its bilinear weight."""
    corners = [DrumPattern(h) for h in _grids(hits, _model.num_steps)]
    return _model.grid(corners, n, temperature, seed, codes=_anchored(model_key, hits, refine, _model))


def _command(command: str) -> None:
    state = st.session_state
    n = int(state["grid_n"])
    if command.startswith("cell:"):  # the browser already plays this cell (from its bank)
        try:
            row, col = (int(v) for v in command[5:].split(","))
        except ValueError:
            return
        state["grid_row"], state["grid_col"] = min(max(row, 1), n), min(max(col, 1), n)
        state["grid_source"] = "cell"
        follow("grid", MAIN)
        return
    dr, dc = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}.get(command, (0, 0))
    if dr or dc:
        state["grid_row"] = min(max(int(state["grid_row"]) + dr, 1), n)
        state["grid_col"] = min(max(int(state["grid_col"]) + dc, 1), n)
        state["grid_source"] = "cell"
        follow("grid", MAIN)


def _cell_picked() -> None:
    st.session_state["grid_source"] = "cell"
    follow("grid", MAIN)


def _pos_changed() -> None:
    value = st.session_state.get("grid_pad")
    pos = value.get("pos") if isinstance(value, dict) else None
    if pos:
        st.session_state["grid_puck"] = [min(max(float(v), 0.0), 1.0) for v in pos[:2]]
        st.session_state["grid_source"] = "puck"
        follow("grid", MAIN)


def _path_changed() -> None:
    value = st.session_state.get("grid_pad")
    path = value.get("path") if isinstance(value, dict) else None
    if path and len(path) >= 2:
        st.session_state["grid_path"] = [[float(x), float(y)] for x, y in path[:64]]
        st.session_state["grid_source"] = "path"
        follow("grid", MAIN)


@st.cache_data(max_entries=256, show_spinner=False)
def _blend(model_key: str, hits: bytes, refine: bool, points: tuple, temperature: float, seed: int,
           _model) -> list[DrumPattern]:
    """Grooves at pad positions: the corners' anchored codes (the grid's) mixed bilinearly, each anchor
    weighing ``fade`` of its corner's weight as in the grid, decoded in one batch."""
    from musicvae.api import fade
    from musicvae.latent.morph import corner_weights

    anchored = _anchored(model_key, hits, refine, _model)
    corners = np.stack([g.code.numpy() for g in anchored])
    weights = np.stack([corner_weights(x, y) for x, y in points])
    return _model.decode(weights @ corners, temperature, seed, anchors=[g.anchor for g in anchored],
                         weights=fade(weights))


def _pad_grooves(ctx: ui.Context, corners: list[DrumPattern]) -> tuple[DrumPattern, str, list | None]:
    """(the puck's groove or the path's first, its title, the path's grooves or None)."""
    from musicvae.app.pad import resample

    state = st.session_state
    codes = (np.stack([c.hits for c in corners]).tobytes(), refining())
    args = (float(state["temperature"]), int(state["seed"]) + DECODE_SEED_OFFSET, ctx.model)
    key = core.model_key(ctx.pick.path)
    if state.get("grid_source") == "path" and state.get("grid_path"):
        points = tuple((round(x, 2), round(y, 2)) for x, y in resample(state["grid_path"], PATH_BARS))
        queue = feel.humanize(_blend(key, *codes, points, *args))  # with feel when the switch is on
        return queue[0], f"the drawn path ({PATH_BARS} grooves, one per bar)", list(queue)
    x, y = (round(float(v), 2) for v in state.get("grid_puck") or (0.5, 0.5))
    return feel.humanize(_blend(key, *codes, ((x, y),), *args))[0], f"puck at {x:.2f} across, {y:.2f} down", None


def _edit_corner(i: int, key: str, items: dict) -> str:
    """A click on a corner's roll toggles that hit: the corner becomes an edited copy (kept in this tab)."""
    from musicvae.media.plots import roll_cell

    state = st.session_state
    selection = state.get(f"roll_corner_src_{i}")
    points = list(selection["selection"]["points"]) if selection else []
    marker = repr(points)
    if marker == state.get(f"_corner_click_{i}"):
        return key
    state[f"_corner_click_{i}"] = marker
    cell = roll_cell(points)
    if cell is None:
        return key
    label, pattern = items[key]
    step, cls = cell
    hits = pattern.hits.copy()
    hits[step, cls] = not hits[step, cls]
    velocities = None if pattern.velocities is None else pattern.velocities.copy()
    if velocities is not None and hits[step, cls] and velocities[step, cls] == 0:
        velocities[step, cls] = 80
    offsets = None if pattern.offsets is None else np.where(hits, pattern.offsets, 0.0)  # a new hit: on the grid
    edited = DrumPattern(hits, velocities, pattern.qpm, offsets=offsets)
    edited.source = pattern.source
    name = f"edit:{i}"
    base = label.removeprefix("✎ ").removesuffix(" (edited)")
    state.setdefault("pinned", {})[name] = (f"✎ {base} (edited)", edited)
    items[name] = state["pinned"][name]
    state[f"corner_{i}"] = name
    return name


def _corner_label(items: dict, key: str) -> str:
    return items[key][0].lstrip("♪⬆★ ")


@st.fragment
def grid_ui(ctx: ui.Context) -> None:
    from musicvae.media.plots import mosaic

    state = st.session_state
    st.header("Grid")
    stage = Stage(ctx, "grid", MAIN)
    items = ui.library()
    for i in range(4):  # a click on a corner's roll (last run) edits it, before the pickers are drawn
        if ctx.model is not None and state.get(f"corner_{i}") in items:
            _edit_corner(i, state[f"corner_{i}"], items)
    box = st.expander("Corners and grid size") if ctx.present else st.container()
    corner_keys = []
    with box:
        columns = st.columns(4)
        for i, name in enumerate(NAMES):
            with columns[i]:
                corner_keys.append(ui.pick_groove(f"Corner {name}", f"corner_{i}", items))
    corners = [items[k][1] for k in corner_keys]
    timer = ui.Timer()
    if ctx.model is None:
        ui.no_model_notice()
        n, patterns = 2, corners
    else:
        with box:
            st.slider("Grid size (N × N)", 3, 11, key="grid_n")
            temperature_and_seed(ctx)
        n = int(state["grid_n"])
        hits = np.stack([c.hits for c in corners]).tobytes()
        patterns = list(_grid(core.model_key(ctx.pick.path), hits, refining(), n, float(state["temperature"]),
                              int(state["seed"]) + DECODE_SEED_OFFSET, ctx.model))
        timer.mark(f"decode {n * n}")
        if feel.active():  # every cell played with feel (one cached batch; the corners' hits are anchored)
            patterns = feel.humanize(patterns)
            timer.mark(f"humanize {n * n}")
    hit = clicked("grid_chart", n, "_grid_click")
    if hit is not None:
        state["grid_row"], state["grid_col"] = hit // n + 1, hit % n + 1
        state["grid_source"] = "cell"
        follow("grid", MAIN)
    state.setdefault("grid_source", "cell")
    state["grid_row"] = min(max(int(state["grid_row"]), 1), n)
    state["grid_col"] = min(max(int(state["grid_col"]), 1), n)
    cell = (state["grid_row"] - 1) * n + state["grid_col"] - 1
    title = f"grid cell row {state['grid_row']}, column {state['grid_col']}"
    labels = [_corner_label(items, k) for k in corner_keys]
    main, queue = patterns[cell], None
    tag = f"cell:{state['grid_row']},{state['grid_col']}"
    if ctx.model is not None and state.get("grid_source") in ("puck", "path"):
        main, title, queue = _pad_grooves(ctx, corners)
        x, y = (float(v) for v in state.get("grid_puck") or (0.5, 0.5))
        tag = "path" if queue else f"puck:{x:.3f},{y:.3f}"  # as the pad announced it to the looper
    stage.offer(MAIN, title, main)  # the looper gets its groove before the grid is drawn
    for i, name in enumerate(NAMES):
        stage.offer(f"corner_src_{i}", f"{name}: {labels[i]}", corners[i])
    bank = {f"cell:{i // n + 1},{i % n + 1}": p for i, p in enumerate(patterns)} if len(patterns) == n * n else None
    nav = {"n": n, "row": int(state["grid_row"]), "col": int(state["grid_col"]), "chart": "grid_chart",
           "roll": f"roll_{MAIN}", "label": "♪ grid cell row {row}, column {col}"}  # as the title below
    stage.mount(_command, queue, bank=bank, nav=nav, tag=tag)
    left, middle, right = st.columns([5, 3, 5])
    with left:
        top = st.columns(2)
        top[0].markdown(f"◤ **{ui.md_text(labels[0])}**")
        top[1].markdown(f"<div style='text-align:right'>{ui.html_text(labels[1])} ◥</div>", unsafe_allow_html=True)
        cell_height = min(52, max(30, 440 // n)) if ctx.present else 52
        st.plotly_chart(mosaic(patterns, n, None, cell, cell_height=cell_height,
                               hover="row %{customdata[0]}, column %{customdata[1]}: click to play it"),
                        key="grid_chart", on_select="rerun", selection_mode="points",
                        config={"displayModeBar": False}, theme=None)
        bottom = st.columns(2)
        bottom[0].markdown(f"◣ **{ui.md_text(labels[2])}**")
        bottom[1].markdown(f"<div style='text-align:right'>{ui.html_text(labels[3])} ◢</div>",
                           unsafe_allow_html=True)
        if not ctx.present:
            st.caption("Click a cell (or press the arrow keys, or use the selectors) to play it.")
            r, c = st.columns(2)
            r.selectbox("Row", list(range(1, n + 1)), key="grid_row", on_change=_cell_picked)
            c.selectbox("Column", list(range(1, n + 1)), key="grid_col", on_change=_cell_picked)
    if ctx.model is not None:
        with middle:
            from musicvae.app.pad import pad

            st.toggle("Draw a path", key="grid_draw", help="Off: drag the puck anywhere between the corners. "
                      f"On: draw a path; the looper follows it, one groove per bar ({PATH_BARS} bars).")
            pad("grid_pad", labels, tuple(state.get("grid_puck") or (0.5, 0.5)),
                state.get("grid_path") if state.get("grid_source") == "path" else None,
                bool(state.get("grid_draw")), _pos_changed, _path_changed)
            st.caption("Blend pad: any point between the four corners.")
    with right:
        stage.show(main, MAIN, title)
    timer.mark("grid view")
    columns = st.columns(4)
    for i, name in enumerate(NAMES):
        with columns[i]:
            stage.show(corners[i], f"corner_src_{i}", f"{name}: {labels[i]}", height=int(ctx.roll_height * 0.55),
                       downloads=False, colorbar=False, editable=ctx.model is not None,
                       caption=f"{core.describe(corners[i], ctx.qpm)} · click a cell to add or remove a hit")
    if ctx.model is not None:
        closeness(ctx, [(f"the {name} corner", c) for name, c in zip(NAMES, corners, strict=True)])
        ui.link_notice(corner_keys, items)
        names = [f"cell_r{i // n + 1:02d}_c{i % n + 1:02d}" for i in range(n * n)]
        _zip_button(ctx, patterns, names, "grid", "grid_zip")
        st.caption(f"The ZIP holds {n * n} MIDI and WAV files (about {n * n * 0.35 * 120 / ctx.qpm:.0f} MB).")
    timer.show(ctx)
    ui.sync_url()
