"""Plotly piano rolls of drum grooves: a full roll, and compact mosaics for strips and grids.

A roll is one heatmap trace (9 rows, kick at the bottom, one column per 16th step; silent cells
are gaps, hits are coloured by velocity) with bar and beat lines as layout shapes.  A groove with
a feel of its own (``DrumPattern.offsets``: humanized, or an upload played by a drummer) gets one
more trace: a thin tick on each hit where it is really played (x = step + offset), so a quantized
groove (no ticks) and its humanized version can be compared by eye; the hover says the offset in ms.  A mosaic puts
many compact rolls into a *single* heatmap (cells separated by blank rows/columns): an 11x11 grid
is one trace instead of 121 subplots.

Speed: figures are built as plain dicts and wrapped without plotly's property validation
(``go.Figure(..., _validate=False)``), which cost ~15 ms per roll, more than the rest of a slider
move's server work apart from decoding; numeric arrays travel as plotly.js typed-array specs.
"""

from __future__ import annotations

import base64
import html
from functools import lru_cache

import numpy as np
import plotly.graph_objects as go

from musicvae.pattern import CLASS_NAMES, NUM_CLASSES, STEPS_PER_BAR, STEPS_PER_QUARTER, DrumPattern

SHORT_NAMES = ("kick", "snare", "closed hat", "open hat", "low tom", "mid tom", "high tom", "crash", "ride")
# velocity 1..127 -> light to saturated orange-red; NaN (no hit) stays transparent
VELOCITY_SCALE = [[0.0, "#fde3c8"], [0.45, "#f7a35c"], [0.75, "#e4572e"], [1.0, "#8c1c13"]]
BAR_LINE = "rgba(60,60,60,0.75)"
BEAT_LINE = "rgba(120,120,120,0.35)"
_TYPED = {np.dtype(np.uint8): "u1", np.dtype(np.int16): "i2", np.dtype(np.float32): "f4", np.dtype(np.float64): "f8"}


def _typed(array: np.ndarray) -> dict:
    """A plotly.js typed-array spec (base64), much smaller and faster than a JSON list of numbers."""
    array = np.ascontiguousarray(array)
    spec = {"dtype": _TYPED[array.dtype], "bdata": base64.b64encode(array.tobytes()).decode("ascii")}
    if array.ndim > 1:
        spec["shape"] = ",".join(str(n) for n in array.shape)
    return spec


def _figure(data: list[dict], layout: dict) -> go.Figure:
    return go.Figure({"data": data, "layout": layout}, _validate=False)


def _position(step: int) -> str:
    bar, within = divmod(step, STEPS_PER_BAR)
    beat, sixteenth = divmod(within, STEPS_PER_QUARTER)
    return f"bar {bar + 1}, beat {beat + 1}" + (f" + {sixteenth}/4" if sixteenth else "")


@lru_cache(maxsize=8)
def _base_text(steps: int) -> np.ndarray:
    """Hover text per (row, step) without velocity: '<position><br><instrument>'."""
    text = np.empty((NUM_CLASSES, steps), dtype=object)
    for row in range(NUM_CLASSES):
        for step in range(steps):
            text[row, step] = f"{_position(step)}<br>{CLASS_NAMES[row]}"
    return text.astype(str)


def offset_ms(pattern: DrumPattern, qpm: float | None = None) -> np.ndarray:
    """[T, 9] each hit's offset from its step in milliseconds at ``qpm`` (default: the pattern's own)."""
    return pattern.offset_grid().astype(np.float64) * 60000.0 / float(qpm or pattern.qpm) / STEPS_PER_QUARTER


def has_timing(pattern: DrumPattern) -> bool:
    """Whether some hit of the groove is played off the grid (``DrumPattern.has_timing``)."""
    return pattern.has_timing


def _cells(pattern: DrumPattern, qpm: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """z [9, steps] (velocity or NaN) and hover text [9, steps] (velocity, and the offset in ms when the
    groove is played off the grid)."""
    velocities = pattern.velocity_grid().T.astype(float)  # [9, steps]
    hits = pattern.hits.T
    z = np.where(hits, velocities, np.nan)
    text = _base_text(pattern.num_steps).astype(object)  # only the hit cells get more (string ops per cell are slow)
    rows, steps = np.nonzero(hits)
    vel = velocities[rows, steps].astype(int).tolist()
    if not has_timing(pattern):
        for r, t, v in zip(rows.tolist(), steps.tolist(), vel, strict=True):
            text[r, t] += f"<br>velocity {v}"
    else:
        ms = np.rint(offset_ms(pattern, qpm).T[rows, steps]).astype(int).tolist()
        for r, t, v, m in zip(rows.tolist(), steps.tolist(), vel, ms, strict=True):
            when = "late" if m > 0 else "early" if m < 0 else "on the grid"
            text[r, t] += f"<br>velocity {v}<br>offset {m:+d} ms ({when})"
    return z, text


TICK_COLOR = "rgba(20,20,20,0.7)"


def _feel_ticks(pattern: DrumPattern, height: int) -> dict:
    """One thin vertical tick per hit at step + offset (where it is played), no hover of its own."""
    steps, classes = np.nonzero(pattern.hits)
    x = (steps + pattern.offset_grid()[steps, classes]).astype(np.float32)
    row = max(6, int((height - 40) / NUM_CLASSES * 0.6))  # about 60% of a row tall, 1 px wide: the cell shows
    return {"type": "scatter", "mode": "markers", "x": _typed(x), "y": _typed(classes.astype(np.uint8)),
            "marker": {"symbol": "line-ns", "size": row, "line": {"width": 1, "color": TICK_COLOR}},
            "hoverinfo": "skip", "showlegend": False, "name": "played at"}


def piano_roll(
    pattern: DrumPattern, title: str = "", height: int = 300, compact: bool = False, colorbar: bool = True,
    editable: bool = False, qpm: float | None = None,
) -> go.Figure:
    """The full roll: 9 labelled rows (kick at the bottom), every step, bar/beat lines, hover info.

    A groove played off the grid also gets a tick per hit where it is played (see the module doc); the
    hover gives offsets in ms at ``qpm`` (default: the pattern's own tempo).

    ``editable``: an invisible marker on every cell takes clicks (heatmaps are not selectable);
    its customdata is (step, class), see :func:`roll_cell`.

    Rows are separated by the cells' gaps (no line shapes: each shape costs browser redraw time).
    """
    z, text = _cells(pattern, qpm)
    steps = pattern.num_steps
    played = pattern.velocity_grid()[pattern.hits]
    varied = played.size > 0 and int(played.min()) != int(played.max())  # one velocity: a scale says nothing
    heatmap = {
        "type": "heatmap",
        "z": _typed(z.astype(np.float32)),
        "x": list(range(steps)),
        "y": list(range(NUM_CLASSES)),
        "text": text.tolist(),
        "hovertemplate": "%{text}<extra></extra>",
        "colorscale": VELOCITY_SCALE,
        "zmin": 1,
        "zmax": 127,
        "showscale": colorbar and not compact and varied,
        "colorbar": {"title": {"text": "velocity", "side": "right"}, "thickness": 10, "len": 0.9},
        "xgap": 1,
        "ygap": 1,
        "hoverongaps": True,
    }
    shapes = []
    for step in range(0, steps + 1, STEPS_PER_QUARTER):
        is_bar = step % STEPS_PER_BAR == 0
        if compact and not is_bar:
            continue
        shapes.append(
            {"type": "line", "x0": step - 0.5, "x1": step - 0.5, "y0": -0.5, "y1": NUM_CLASSES - 0.5,
             "line": {"color": BAR_LINE if is_bar else BEAT_LINE, "width": 2 if is_bar else 1}, "layer": "above"}
        )
    bar_ticks = list(range(0, steps, STEPS_PER_BAR))
    layout = {
        "height": height,
        "margin": {"l": 4, "r": 4, "t": 28 if title else 4, "b": 4},
        "shapes": shapes,
        "plot_bgcolor": "rgba(245,245,245,0.6)",
        "paper_bgcolor": "rgba(0,0,0,0)",
        "xaxis": {"range": [-0.5, steps - 0.5], "tickvals": bar_ticks,
                  "ticktext": [f"bar {i // STEPS_PER_BAR + 1}" for i in bar_ticks], "showgrid": False,
                  "zeroline": False, "showticklabels": not compact, "fixedrange": True, "automargin": True,
                  "ticks": ""},
        "yaxis": {"range": [-0.5, NUM_CLASSES - 0.5], "tickvals": list(range(NUM_CLASSES)),
                  "ticktext": list(SHORT_NAMES), "showgrid": False, "zeroline": False,
                  "showticklabels": not compact, "fixedrange": True, "automargin": True, "ticks": ""},
        "dragmode": False,
    }
    if title:  # plotly reads titles as HTML-like markup: a file name must stay text
        layout["title"] = {"text": html.escape(title, quote=False), "x": 0.01, "font": {"size": 13}}
    feel = [_feel_ticks(pattern, height)] if has_timing(pattern) else []
    if not editable:
        return _figure([heatmap, *feel], layout)
    steps_grid, classes = np.meshgrid(np.arange(steps), np.arange(NUM_CLASSES), indexing="ij")
    invisible = {"marker": {"opacity": 0}}
    targets = {
        "type": "scatter", "mode": "markers", "x": steps_grid.ravel().tolist(), "y": classes.ravel().tolist(),
        "customdata": np.stack([steps_grid.ravel(), classes.ravel()], axis=1).tolist(),
        "marker": {"symbol": "square", "size": 9, "opacity": 0}, "selected": invisible, "unselected": invisible,
        "text": np.asarray(text).T.ravel().tolist(),  # plotly clicks need a hover on the point itself
        "hovertemplate": "%{text}<br>click: add or remove this hit<extra></extra>", "showlegend": False,
    }
    layout.update({"clickmode": "event+select", "hovermode": "closest"})
    heatmap["hoverinfo"] = "skip"
    heatmap.pop("hovertemplate", None)
    return _figure([heatmap, *feel, targets], layout)


def roll_cell(selection_points: list[dict]) -> tuple[int, int] | None:
    """(step, class) of a click on an editable roll (from Streamlit's plotly selection state)."""
    for point in selection_points:
        custom = point.get("customdata")
        if isinstance(custom, dict):
            custom = [custom.get("0"), custom.get("1")]
        if isinstance(custom, list | tuple) and len(custom) >= 2 and custom[0] is not None:
            return int(custom[0]), int(custom[1])
    return None


def mosaic(
    patterns: list[DrumPattern],
    cols: int,
    labels: list[str] | None = None,
    highlight: int | None = None,
    cell_height: int = 56,
    height: int | None = None,
    hover: str = "row %{customdata[0]}, column %{customdata[1]}",
) -> go.Figure:
    """Many compact rolls in one heatmap, row-major, ``cols`` per row (an interpolation strip or a grid).

    Each groove has an invisible click target whose ``customdata`` is (row + 1, column + 1, index + 1), so
    a click (Streamlit ``on_select``, see :func:`mosaic_index`) picks a groove and ``hover`` can
    name its place; labels are drawn above each groove when there are at most 16.  ``highlight``
    outlines one groove.  z is 0 between grooves, 1 for an empty cell and 2 + velocity for a hit,
    one byte per cell (an 11x11 grid is ~0.1 MB of JSON).
    """
    if not patterns:
        raise ValueError("mosaic needs at least one pattern")
    steps = patterns[0].num_steps
    rows = -(-len(patterns) // cols)
    labelled = bool(labels) and len(patterns) <= 16
    gap, row_gap = 1, 3 if labelled else 1  # labelled rows leave room for the label above each groove
    width_cells, height_cells = cols * (steps + gap) - gap, rows * (NUM_CLASSES + row_gap) - row_gap
    z = np.zeros((height_cells, width_cells), dtype=np.uint8)
    for i, pattern in enumerate(patterns):
        r, c = divmod(i, cols)
        y0 = (rows - 1 - r) * (NUM_CLASSES + row_gap)  # first groove at the top
        x0 = c * (steps + gap)
        z[y0 : y0 + NUM_CLASSES, x0 : x0 + steps] = np.where(pattern.hits.T, 2 + pattern.velocity_grid().T, 1)
    top = 129.0
    scale = [[0.0, "#ffffff"], [0.5 / top, "#ffffff"], [0.5 / top, "#ececec"], [1.5 / top, "#ececec"],
             [1.5 / top, "#fde3c8"], [0.45, "#f7a35c"], [0.75, "#e4572e"], [1.0, "#8c1c13"]]
    heatmap = {"type": "heatmap", "z": _typed(z), "colorscale": scale, "zmin": 0, "zmax": top, "showscale": False,
               "hoverinfo": "skip"}
    # Heatmaps are not selectable in plotly, so one invisible square marker per groove takes the clicks
    # (and the hover): its customdata (row, column) comes back in Streamlit's selection state.
    places = [divmod(i, cols) for i in range(len(patterns))]
    invisible = {"marker": {"opacity": 0}}
    targets = {
        "type": "scatter", "mode": "markers",
        "x": [c * (steps + gap) + (steps - 1) / 2 for _, c in places],
        "y": [(rows - 1 - r) * (NUM_CLASSES + row_gap) + (NUM_CLASSES - 1) / 2 for r, _ in places],
        "customdata": [[r + 1, c + 1, i + 1] for i, (r, c) in enumerate(places)],
        "hovertemplate": hover + "<extra></extra>",
        "marker": {"symbol": "square", "size": max(12, int(cell_height * 0.8)), "opacity": 0, "color": "#1f77b4"},
        "selected": invisible, "unselected": invisible, "showlegend": False,
    }
    shapes = []
    if highlight is not None and 0 <= highlight < len(patterns):
        r, c = divmod(highlight, cols)
        y0 = (rows - 1 - r) * (NUM_CLASSES + row_gap)
        x0 = c * (steps + gap)
        shapes.append({"type": "rect", "x0": x0 - 0.9, "x1": x0 + steps - 0.1, "y0": y0 - 0.9,
                       "y1": y0 + NUM_CLASSES - 0.1, "line": {"color": "#1f77b4", "width": 3}})
    annotations = []
    if labelled:
        for i, label in enumerate(labels):
            r, c = divmod(i, cols)
            annotations.append({"x": c * (steps + gap) + steps / 2 - 0.5,
                                "y": (rows - 1 - r) * (NUM_CLASSES + row_gap) + NUM_CLASSES - 0.3, "text": label,
                                "showarrow": False, "yanchor": "bottom", "font": {"size": 11}})
    layout = {
        "height": height or max(120, rows * cell_height + 30),
        "margin": {"l": 2, "r": 2, "t": 22 if annotations else 2, "b": 2},
        "shapes": shapes,
        "annotations": annotations,
        "plot_bgcolor": "rgba(0,0,0,0)",
        "xaxis": {"visible": False, "range": [-1, width_cells], "fixedrange": True},
        "yaxis": {"visible": False, "range": [-1, height_cells + (1.5 if annotations else 0)], "fixedrange": True},
        "dragmode": False,
        "clickmode": "event+select",
        "hovermode": "closest",
        "showlegend": False,
    }
    return _figure([heatmap, targets], layout)


def mosaic_index(selection_points: list[dict], cols: int) -> int | None:
    """The groove index a click on a mosaic picked (from Streamlit's plotly selection state).

    The click targets are the figure's second trace, one point per groove in order; their
    customdata (row, column) arrives as a list or, from a typed array, as {"0": row, "1": column}.
    """
    for point in selection_points:
        custom = point.get("customdata")
        if isinstance(custom, dict):
            custom = [custom.get("0"), custom.get("1")]
        if isinstance(custom, list | tuple) and len(custom) >= 2 and custom[0] is not None and int(custom[0]) > 0:
            return (int(custom[0]) - 1) * cols + int(custom[1]) - 1
        if point.get("curve_number") == 1 and point.get("point_index") is not None:
            return int(point["point_index"])
    return None


def decode_typed(spec) -> np.ndarray:
    """The array behind a typed-array spec (or a plain list): for tests and tools."""
    if isinstance(spec, dict) and "bdata" in spec:
        dtype = {v: k for k, v in _TYPED.items()}[spec["dtype"]]
        array = np.frombuffer(base64.b64decode(spec["bdata"]), dtype=dtype)
        return array.reshape([int(n) for n in spec["shape"].split(",")]) if "shape" in spec else array
    return np.asarray(spec)
