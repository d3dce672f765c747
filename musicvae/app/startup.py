"""The first page of a fresh server: a groove you can play at once while the model loads.

Importing torch and loading the checkpoints take ~2 s of a 2-core machine's time, and the first
page run used to pay it before drawing anything (first playable groove 7.5-8.7 s after
``streamlit run``).  When a mode's model is not in memory yet, :func:`warm_up_ui` draws the
mode's header and the looper with a preset groove (numpy only: no torch), loads the models in
that same run and reruns; the full page then replaces it and the looper takes the model's groove
over at the next bar line, without stopping (the player lives in the browser across reruns).
"""

from __future__ import annotations

import time

import streamlit as st

from musicvae.app import core, feel, models, ui
from musicvae.app.player import looper
from musicvae.app.stage import LOOPER_KEY
from musicvae.media.audio import AudioError
from musicvae.media.drumkit import KitError, load_kit

# The full page's first render (plotly.js, every widget) stalls the browser's main thread: 1-3 s
# measured with the machine busy, longer than the looper's usual 1 s of audio scheduled ahead.
WARM_LOOKAHEAD_S = 4.0
FLUSH_S = 0.3
_WARM: set[str] = set()  # model keys whose first run this process has done (models.load_model holds the model)


def cold(mode: str, first_run: bool) -> bool:
    """Whether this is a session's first run and the model its mode needs has not been loaded by such
    a run in this process yet (a model loaded otherwise costs one quick extra run here, no more).
    Later runs (a mode switch) load a new model in place, as always: a stand-in page then would drop
    the widgets it does not draw, and their values with them."""
    if not first_run:
        return False
    pick = _pick(mode)
    return pick is not None and core.model_key(pick.path) not in _WARM


def _pick(mode: str) -> core.ModelPick | None:
    """The model the mode starts with (the sidebar's picker draws this choice later in the run)."""
    return core.pick_model(st.session_state.get(f"model_{mode}") or core.MODE_ROLES[mode])


def _stand_in(mode: str) -> tuple[str, object] | None:
    """(title, groove) to play until the model is there: the preset this mode starts from."""
    state, items = st.session_state, ui.library()
    key = {"interpolate": "interp_a", "grid": "corner_0"}.get(mode, "sim_base")
    if state.get(key) in items:
        return items[state[key]]
    presets = ui.get_presets()
    if not presets:
        return None
    preset = presets[int(state.get("seed", 0)) % len(presets)]
    return preset.name, preset.pattern


def _kit():
    """The looper's kit from its disk cache, or None (the full page then says why there is no audio).
    Not through ``ui.get_kit``: that waits for the FluidSynth synth the warm-up thread is loading."""
    try:
        return load_kit()
    except (AudioError, KitError):
        return None


def _stand_in_ui(mode: str) -> None:
    """Laid out as every mode is (a fragment's container: header, then the Stage's slot), so the full
    page's header and looper take these elements' places instead of leaving stale copies behind.
    Plain containers, not a fragment: the looper's first report (its kit) then asks for a full rerun,
    never for a rerun of a fragment the full page has replaced."""
    stand_in, state = _stand_in(mode), st.session_state
    with st.container():
        st.header(core.MODES[mode])
        with st.container():
            kit = _kit()
            if stand_in is not None and kit is not None:
                title, pattern = stand_in
                looper(pattern, float(state["qpm"]), key=LOOPER_KEY, switch_at=state.get("switch_at", "bar"),
                       label=f"♪ {title.removeprefix('♪ ')} (while the model loads)", kit=kit,
                       lookahead=WARM_LOOKAHEAD_S)
        st.caption("Loading the model: the loop plays a preset until the model's groove takes over at a bar line.")


def warm_up_ui(mode: str) -> None:
    """Header + looper playing a preset, then load the models and rerun into the real page."""
    st.sidebar.title("MusicVAE drums")  # the sidebar's place is taken now, so nothing moves when it fills
    _stand_in_ui(mode)
    # Importing torch holds the GIL for ~1 s, and the server's event loop needs it to send the looper's
    # kit (~1.5 MB): let it go first (measured: without this pause the player mounted only after the
    # model had loaded, 1.3 s later).
    time.sleep(FLUSH_S)
    pick = _pick(mode)
    key = core.model_key(pick.path)
    models.load_model(key, str(pick.path))  # a failure is cached too: the full page says why
    feel.groove_model()
    _WARM.add(key)
    st.rerun()
