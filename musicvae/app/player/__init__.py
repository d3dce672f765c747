"""One looping drum player per screen that never stops: a Streamlit ``st.components.v2`` component.

``looper(pattern, qpm, key=...)`` mounts the player with the current groove as data.  The audio
runs in the browser in a window-level singleton (``window.__musicvaeLooper``, see ``looper.js``):
the AudioContext and the loop survive reruns and remounts, a new groove waits and takes over at
the next bar line (or beat, ``switch_at="beat"``), and a tempo change applies from the next 16th.
Hits play one-shot samples rendered once by FluidSynth from the app's soundfont
(:mod:`musicvae.media.drumkit`); the kit (~1.5 MB of data URLs) is sent only until the browser
says it holds it (state ``kit``), so a rerun carries only the groove (a few hundred bytes).

Keyboard (when the focus is not in an input, slider or other control): space plays/stops, ``N``
sends ``command="new"``, the arrow keys send ``"left"/"right"/"up"/"down"``; the app reads them
from :attr:`LooperState.command` (a trigger: set for the one rerun it caused).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from musicvae.pattern import DEFAULT_QPM, DEFAULT_VELOCITY, NUM_CLASSES

HERE = Path(__file__).resolve().parent
COMPONENT_NAME = "musicvae_looper"
SWITCH_AT = ("bar", "beat")
MAX_OFFSET = 0.5  # per-hit timing offsets, in fractions of a 16th step
_SOURCES: dict[str, str] = {}
_BANKS: dict[str, dict] = {}  # content digest -> bank payload (the grooves' JSON is built once)
_BANK_CACHE = 16


@dataclass(frozen=True)
class LooperState:
    """What the browser reported: ``playing``, the kit it holds, and this run's keyboard command."""

    playing: bool
    kit_loaded: bool
    command: str | None
    pattern_id: str


def _source(name: str) -> str:
    if name not in _SOURCES:
        _SOURCES[name] = (HERE / name).read_text(encoding="utf-8")
    return _SOURCES[name]


def _component():
    import streamlit as st

    # registering again with the same content is a no-op (Streamlit warns only when it differs),
    # and it keeps working when a new runtime (AppTest, a restarted server) has an empty registry
    return st.components.v2.component(COMPONENT_NAME, js=_source("looper.js"), css=_source("looper.css"))


def _hits_array(pattern: Any) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``DrumPattern`` | hits [T, 9] (array, or lists of 0/1) | per-step lists of class indices
    -> (bool hits [T, 9], the pattern's own velocities or None, its own offsets or None)."""
    if hasattr(pattern, "hits") and hasattr(pattern, "velocity_grid"):
        offsets = pattern.offset_grid() if getattr(pattern, "offsets", None) is not None else None
        return np.asarray(pattern.hits, dtype=bool), np.asarray(pattern.velocity_grid()), offsets
    if not isinstance(pattern, np.ndarray):
        steps = [list(np.asarray(row).tolist()) for row in pattern]
        grid = bool(steps) and all(len(row) == NUM_CLASSES and set(row) <= {0, 1} for row in steps)
        if not grid:  # per-step lists of drum classes
            array = np.zeros((len(steps), NUM_CLASSES), dtype=bool)
            for t, classes in enumerate(steps):
                for c in classes:
                    if not 0 <= int(c) < NUM_CLASSES:
                        raise ValueError(f"step {t}: drum class {c} is not in 0..{NUM_CLASSES - 1}")
                    array[t, int(c)] = True
            return array, None, None
        pattern = steps
    array = np.asarray(pattern)
    if array.ndim != 2 or array.shape[1] != NUM_CLASSES:
        raise ValueError(f"a groove is [steps, {NUM_CLASSES}] hits, got shape {array.shape}")
    return array.astype(bool), None, None


def pattern_data(pattern: Any, velocities: Any = None, offsets: Any = None) -> dict:
    """The groove as the component takes it: ``{"id", "steps", "events": [[step, class, velocity, offset]]}``.

    ``velocities`` and ``offsets`` are [T, 9] arrays (a ``DrumPattern`` brings its own velocities and,
    when it has them, its offsets: a humanized or uploaded groove plays with its feel); offsets are
    fractions of a 16th (clamped to +-0.5).  ``id`` hashes the events, so the same groove always has
    the same id and re-sending it changes nothing in the browser (new velocities or offsets: a new id).
    """
    hits, own_velocities, own_offsets = _hits_array(pattern)
    if velocities is None:
        velocities = own_velocities
    if offsets is None:
        offsets = own_offsets
    steps = int(hits.shape[0])
    if steps == 0:
        raise ValueError("a groove needs at least one step")
    vel = np.full(hits.shape, DEFAULT_VELOCITY, dtype=np.int64) if velocities is None else \
        np.asarray(velocities, dtype=np.float64).round().astype(np.int64)
    off = np.zeros(hits.shape) if offsets is None else np.asarray(offsets, dtype=np.float64)
    for name, grid in (("velocities", vel), ("offsets", off)):
        if grid.shape != hits.shape:
            raise ValueError(f"{name} must have the shape of the hits {hits.shape}, got {grid.shape}")
    vel = np.clip(np.where(vel > 0, vel, DEFAULT_VELOCITY), 1, 127)
    off = np.clip(np.nan_to_num(off), -MAX_OFFSET, MAX_OFFSET)
    events = [[int(t), int(c), int(vel[t, c]), round(float(off[t, c]), 4)]
              for t, c in zip(*np.nonzero(hits), strict=True)]
    digest = hashlib.sha1(json.dumps([steps, events]).encode()).hexdigest()[:12]
    return {"id": digest, "steps": steps, "events": events}


def bank_data(bank: dict[str, Any]) -> dict:
    """The bank as the component takes it: ``{"id", "patterns": {key: pattern_data}}``.

    ``id`` hashes the keys and the grooves' ids, so the same bank always has the same id.  The payload
    is kept per content (hits, velocities, offsets), so a rerun with the same grooves costs a digest,
    not a JSON build of every groove."""
    digest = hashlib.sha1()
    for name, groove in bank.items():
        digest.update(str(name).encode() + b"\0")
        if hasattr(groove, "hits") and hasattr(groove, "velocity_grid"):
            for array in (groove.hits, groove.velocity_grid(), groove.offset_grid()):
                array = np.ascontiguousarray(array)
                digest.update(f"{array.dtype}{array.shape}".encode())
                digest.update(array.tobytes())
        else:
            digest.update(json.dumps(np.asarray(groove).tolist()).encode())
    key = digest.hexdigest()
    payload = _BANKS.get(key)
    if payload is None:
        patterns = {str(name): pattern_data(groove) for name, groove in bank.items()}
        ids = json.dumps([[name, data["id"]] for name, data in patterns.items()])
        payload = {"id": hashlib.sha1(ids.encode()).hexdigest()[:12], "patterns": patterns}
        while len(_BANKS) >= _BANK_CACHE:
            _BANKS.pop(next(iter(_BANKS)))
        _BANKS[key] = payload
    return payload


def looper(
    pattern: Any,
    qpm: float = DEFAULT_QPM,
    *,
    key: str = "looper",
    velocities: Any = None,
    offsets: Any = None,
    switch_at: str = "bar",
    label: str = "",
    autoplay: bool = False,
    keyboard: bool = True,
    kit: Any = None,
    on_command: Any = None,
    roll: str = "",
    queue: Any = None,
    bank: dict[str, Any] | None = None,
    nav: dict | None = None,
    tag: str | None = None,
    lookahead: float | None = None,
) -> LooperState:
    """Mount the looping player with ``pattern`` as the groove; returns what the browser reported.

    ``pattern``: a ``DrumPattern``, hits [T, 9] (bool/0-1 array or nested lists), or a list of
    per-step lists of class indices.  ``qpm`` changes the tempo live.  ``switch_at``: "bar" or
    "beat", where a new groove takes over.  ``key`` must stay the same across reruns (one player
    per screen).  ``kit``: a ``drumkit.DrumKit`` (default: the app's soundfont, rendered once).
    ``on_command(command)`` runs as a callback, before the rerun the key press caused (so the app
    draws the new groove in that same run).  ``roll``: the key of the ``st.plotly_chart`` piano
    roll of this groove; the browser moves a playhead over it (``.st-key-<roll>``).  ``queue``: a list
    of grooves the loop follows one per bar (bar k plays bar k of groove k, round and round) until a
    run without a queue; ``pattern`` is then what plays when the queue ends.
    ``bank``: ``{key: groove}`` the browser may switch to on an input event before the rerun (sent
    once per content, see :func:`bank_data`); ``nav``: ``{"n", "row", "col", "chart", "roll", "label"}`` for the
    Grid (bank keys ``"cell:<row>,<col>"``, 1-based: the arrow keys move the cell and send
    ``command="cell:<row>,<col>"``, a click on the plotly chart ``.st-key-<chart>`` switches to its
    cell, the blend pad's puck to the nearest cell; ``label`` with ``{row}``/``{col}`` relabels the
    player at once; ``"rows"``/``"cols"`` for a grid that is not square: the Interpolate strip is one row,
    where up/down step like left/right), or ``{"sliders": [{"key", "points": [[value,
    bank_key, tag], ...]}]}`` for sliders whose neighbouring values are banked (the slider in
    ``.st-key-<key>`` moving to ``value`` switches to ``bank_key`` at once; the rerun answers with
    ``tag``; ``"next": [bank_key, tag, button_key]`` makes N, and a click on the button in
    ``.st-key-<button_key>``, switch to ``bank_key`` at once, the rerun answering with ``tag``: the next
    seed's groove, see ``stage.with_next``); ``tag``: what the server plays (``"cell:2,3"``,
    ``"puck:0.300,0.800"``...), matched against the browser's local switches.  ``lookahead``: seconds
    of audio to keep scheduled ahead from now on (default 1 s, raised by itself after a late tick; at
    most 4 s), for a page about to stall its main thread for long (a fresh server's first full render:
    musicvae/app/startup.py).
    Raises the audio module's ``AudioError`` / ``drumkit.KitError`` when no drum kit can be made.
    """
    import streamlit as st

    from musicvae.media import drumkit

    if switch_at not in SWITCH_AT:
        raise ValueError(f"switch_at must be one of {SWITCH_AT}, got {switch_at!r}")
    groove = pattern_data(pattern, velocities, offsets)
    kit = kit or drumkit.load_kit()
    previous = st.session_state.get(key)
    held = previous.get("kit") if isinstance(previous, dict) else None
    data = {
        "pattern": groove,
        "qpm": float(qpm),
        "switch_at": switch_at,
        "label": str(label),
        "kit_id": kit.key,
        "kit": None if held == kit.key else drumkit.kit_payload(kit),
        "autoplay": bool(autoplay),
        "keyboard": bool(keyboard),
        "roll": str(roll),
        "queue": None,
    }
    if bank:
        payload = bank_data(bank)
        sent_key = f"_{key}_bank_sent"
        asked = previous.get("bank_missing") if isinstance(previous, dict) else None
        resend = asked == payload["id"] and st.session_state.get(f"_{key}_bank_resent") != asked
        if resend:
            st.session_state[f"_{key}_bank_resent"] = asked
        data["bank_id"] = payload["id"]
        data["bank"] = payload if resend or st.session_state.get(sent_key) != payload["id"] else None
        st.session_state[sent_key] = payload["id"]
        data["nav"] = dict(nav) if nav else None
    data["tag"] = None if tag is None else str(tag)
    data["lookahead"] = None if lookahead is None else float(lookahead)
    if queue:
        grooves = [pattern_data(p) for p in queue]
        data["queue"] = {"id": hashlib.sha1(",".join(g["id"] for g in grooves).encode()).hexdigest()[:12],
                         "patterns": grooves}
    result = _component()(
        key=key,
        # as JSON bytes: Streamlit forwards bytes untouched, where a dict is first scanned for
        # dataframes (that imports pandas: 0.36 s of a fresh server's first page)
        data=json.dumps(data, separators=(",", ":")).encode(),
        default={"playing": False, "kit": None, "bank_missing": None},
        on_playing_change=_ignore,
        on_kit_change=_ignore,
        on_command_change=_ignore if on_command is None else (lambda: _dispatch(key, on_command)),
        on_bank_missing_change=_ignore,
        height="content",
    )
    return LooperState(
        playing=bool(result.get("playing")),
        kit_loaded=result.get("kit") == kit.key,
        command=result.get("command"),
        pattern_id=groove["id"],
    )


def _dispatch(key: str, on_command) -> None:
    import streamlit as st

    value = st.session_state.get(key)
    command = value.get("command") if isinstance(value, dict) else None
    if command:
        on_command(str(command))


def _ignore() -> None:
    """State and trigger names need a callback to be kept; the app reads them from the result."""
