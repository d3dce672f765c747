"""Humanize: the grooves the models make, played with a drummer's dynamics and timing (issue 17).

The categorical models decode hits on the grid at one velocity.  With the sidebar's "Humanize"
switch on (``?humanize=1``), every groove a model makes in any mode (samples, steered grooves,
interpolation steps, grid cells, the blend pad's grooves) goes through the groove model
(``api.GrooveModel.humanize``, checkpoint ``groovae-hier_4bar_humanize``) before it is drawn,
played by the looper and exported: the same hits, with velocities and offsets.  Grooves the user
brought (uploads, presets, kept and edited grooves) keep their own feel: the modes call
:func:`humanize` on model output only.

The groove model is loaded once per process (``st.cache_resource``; a failure is cached too, so a
broken checkpoint costs one attempt, not one per rerun) and humanized batches are cached by their
hits, so a rerun costs nothing.  No model, or one that fails to load: the switch is disabled with
a one-sentence reason and everything else works as before.  "Feel variation" (0 = the model's most
likely performance) draws the groove model's z around it; "Another take" re-draws it.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st

from musicvae.app import core, models
from musicvae.pattern import STEPS_PER_BAR, DrumPattern

log = logging.getLogger(__name__)
GROOVE_MODEL = "groovae-hier_4bar_humanize"  # = api.DEFAULT_HUMANIZE_MODEL (kept here: no torch import early)
DEFAULTS: dict[str, Any] = {"humanize": False, "feel_variation": 0.0, "feel_take": 0}
HELP = ("Play the grooves the model makes like a drummer would: the groove model gives every hit a velocity and "
        "a small push or drag off the grid (the hits stay the same). Your own grooves keep their feel.")


@st.cache_resource(show_spinner="Loading the groove model ...")
def _load(key: str, path: str) -> tuple[Any, str | None]:
    """(GrooveModel, None) or (None, the reason in one sentence); one attempt per process and file."""
    from musicvae.api import GrooveModel

    def load():
        model = GrooveModel.load(path)
        model.humanize([DrumPattern.empty(1)])  # a humanize model at all? (and warm)
        return model

    model, detail = models.attempt(path, load)
    if detail is None:
        return model, None
    return None, f"Humanize is unavailable: the groove model `{GROOVE_MODEL}` could not be loaded ({detail})."


def groove_model() -> tuple[Any, str, str | None]:
    """(model or None, its cache key, why there is none)."""
    folder = core.model_dir(GROOVE_MODEL)
    if folder is None:
        return None, "", (f"Humanize needs the groove model `{GROOVE_MODEL}`, which is not installed in "
                          f"`{core.checkpoints_root()}`.")
    key = core.model_key(folder)
    model, reason = _load(key, str(folder))
    return model, key, reason


def restore(qp, state) -> None:
    """``?humanize=1&feel=0.3&take=2`` -> the switch, the variation and the take."""
    state["humanize"] = qp.get("humanize") in ("1", "true", "yes")
    state["feel_variation"] = core.parse_number(qp.get("feel"), float, 0.0, 1.0, state["feel_variation"])
    state["feel_take"] = core.parse_number(qp.get("take"), int, 0, 9999, state["feel_take"])


def url_params(state) -> dict[str, str]:
    if not state.get("humanize"):
        return {}
    wanted = {"humanize": "1"}
    if float(state.get("feel_variation", 0.0)) > 0:
        wanted["feel"] = f"{float(state['feel_variation']):g}"
        wanted["take"] = str(int(state.get("feel_take", 0)))
    return wanted


def _another_take() -> None:
    st.session_state["feel_take"] = (int(st.session_state.get("feel_take", 0)) + 1) % 10000


def sidebar_controls(present: bool) -> None:
    """The "Humanize" switch (disabled, with the reason, when there is no groove model) and its variation."""
    state = st.session_state
    model, _, reason = groove_model()
    if model is None:
        state["humanize"] = False  # a link with ?humanize=1 opened where no groove model is installed
    st.toggle("Humanize", key="humanize", disabled=model is None, help=HELP)
    if reason:
        st.caption(reason)
    elif state["humanize"] and not present:
        st.slider("Feel variation", 0.0, 1.0, step=0.05, key="feel_variation",
                  help="0: the groove model's most likely performance. Higher: each take plays it a bit differently.")
        if float(state["feel_variation"]) > 0:
            st.button("🎲 Another take", key="feel_take_btn", on_click=_another_take,
                      help="The same grooves, played once more by the groove model (another draw of its z).")


@dataclass(frozen=True)
class Feel:
    """What humanizing needs, read once in the script thread (the latent prefetch thread takes it along)."""

    model: Any
    key: str
    variation: float
    take: int


def current() -> Feel | None:
    """The switch's settings when it is on and a groove model is there; None otherwise."""
    if not st.session_state.get("humanize"):
        return None
    model, key, _ = groove_model()
    if model is None:
        return None
    state = st.session_state
    return Feel(model, key, round(float(state.get("feel_variation", 0.0)), 3), int(state.get("feel_take", 0)))


def active() -> bool:
    return current() is not None


MAX_SINGLES = 512
_SINGLES: OrderedDict[tuple, tuple] = OrderedDict()
_SINGLES_LOCK = threading.Lock()


def _single(feel: Feel, pattern: DrumPattern) -> tuple:
    """The key of ``pattern`` played with ``feel`` in the LRU of :func:`play_one`."""
    return feel.key, pattern.hits.tobytes(), pattern.num_steps, feel.variation, feel.take


def _keep(played: dict[tuple, tuple]) -> None:
    """Store (velocities, offsets) by key in the LRU, the newest last; the oldest go past MAX_SINGLES."""
    with _SINGLES_LOCK:
        for key, found in played.items():
            _SINGLES[key] = found
            _SINGLES.move_to_end(key)
        while len(_SINGLES) > MAX_SINGLES:
            _SINGLES.popitem(last=False)


def play_one(feel: Feel, pattern: DrumPattern) -> DrumPattern:
    """One groove with feel through a small thread-safe LRU: the latent sliders' prefetch thread (where
    ``st.cache_data`` has no page) humanizes the next step's groove too, so a slider step finds it ready."""
    key = _single(feel, pattern)
    with _SINGLES_LOCK:
        found = _SINGLES.get(key)
        if found is not None:
            _SINGLES.move_to_end(key)
    if found is None:
        played = feel.model.humanize([pattern], feel.variation, feel.take if feel.variation > 0 else None)[0]
        found = (played.velocities, played.offsets)
        _keep({key: found})
    return DrumPattern(pattern.hits, found[0], pattern.qpm, pattern.source, found[1])


def play_many(feel: Feel, patterns: list[DrumPattern]) -> None:
    """Put ``patterns`` with feel into :func:`play_one`'s LRU in one batch of the groove model (those not
    there yet): a Latent step's new neighbours cost one call (~50 ms and ~7 ms a groove) instead of
    one call each (~48 ms each).  Only at feel variation 0, where the groove model plays each groove
    the same in any batch; above 0 a batch's draws of z depend on the other grooves in it, and a groove
    must sound the same whichever way the sliders reached it: those stay one call each."""
    if feel.variation > 0:
        return
    todo = {_single(feel, p): p for p in patterns if p.num_steps == patterns[0].num_steps and not has_one(feel, p)}
    if todo:
        played = feel.model.humanize(list(todo.values()))  # variation 0: the most likely performance
        _keep({key: (groove.velocities, groove.offsets) for key, groove in zip(todo, played, strict=True)})


def has_one(feel: Feel, pattern: DrumPattern) -> bool:
    """Whether :func:`play_one` holds ``pattern`` with this feel already (it would cost nothing)."""
    with _SINGLES_LOCK:
        return _single(feel, pattern) in _SINGLES


@st.cache_data(max_entries=256, show_spinner=False)
def _humanize(model_key: str, hits: bytes, steps: int, variation: float, take: int, _model) -> list[tuple]:
    """(velocities, offsets) per groove of a batch of hit grids [N, steps, 9] (bytes)."""
    grids = np.frombuffer(hits, dtype=bool).reshape(-1, steps, 9)
    played = _model.humanize([DrumPattern(g) for g in grids], variation, take if variation > 0 else None)
    return [(p.velocities, p.offsets) for p in played]


def humanize(patterns: list[DrumPattern]) -> list[DrumPattern]:
    """The model-made ``patterns`` played with feel when the switch is on (cached); unchanged otherwise.

    Only whole-bar grooves of one length go to the model in one batch (the modes make exactly those);
    anything else, or a failure, leaves the grooves as they are (a failure is logged and said once).
    """
    patterns = list(patterns)
    feel = current() if patterns else None
    if feel is None:
        return patterns
    steps = patterns[0].num_steps
    if steps % STEPS_PER_BAR or any(p.num_steps != steps for p in patterns):
        return patterns
    hits = np.stack([p.hits for p in patterns]).tobytes()
    try:
        played = _humanize(feel.key, hits, steps, feel.variation, feel.take, feel.model)
    except Exception as error:
        _failed(error, len(patterns))
        return patterns
    return [DrumPattern(p.hits, vel, p.qpm, p.source, off) for p, (vel, off) in zip(patterns, played, strict=True)]


def humanize_one(pattern: DrumPattern, feel: Feel | None = None) -> DrumPattern:
    """One model-made groove with feel (``feel``: :func:`current`, read once per run), through :func:`play_one`."""
    if feel is None or pattern.num_steps % STEPS_PER_BAR:
        return pattern
    try:
        return play_one(feel, pattern)
    except Exception as error:
        _failed(error, 1)
        return pattern


def _failed(error: Exception, count: int) -> None:
    log.exception("humanizing %d grooves failed", count)
    st.caption(f"Humanize failed ({type(error).__name__}); the grooves play on the grid.")
