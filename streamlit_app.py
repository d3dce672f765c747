"""MusicVAE drum playground: ``streamlit run streamlit_app.py``.

Sample, steer, interpolate and blend 4-bar drum grooves with a hierarchical MusicVAE; see them
as piano rolls, hear them through FluidSynth, bring your own MIDI and take the results home.
The logic lives in ``musicvae/app/core.py``; widgets in ``musicvae/app/ui.py``, one looper per
screen in ``musicvae/app/stage.py``, the modes in ``modes.py`` (Sample), ``interpolate.py``,
``grid.py`` and ``latent.py``; ``feel.py`` the "Humanize" switch (the groove model plays the
model's grooves with velocities and microtiming); ``startup.py`` a fresh server's first page (a
preset plays at once while the model loads); ``models.py`` loads the checkpoints.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run from anywhere without installing

from musicvae.app import grid, interpolate, latent, modes, startup, ui  # noqa: E402

MODE_UIS = {
    "sample": modes.sample_ui,
    "latent": latent.latent_ui,
    "interpolate": interpolate.interpolate_ui,
    "grid": grid.grid_ui,
}


def page_setup() -> None:
    present = st.query_params.get("present") in ("1", "true", "yes") or st.session_state.get("present", False)
    first = "_restored" not in st.session_state
    st.set_page_config(  # a bookmarked presentation opens with the sidebar folded away
        page_title="MusicVAE drums",
        layout="wide",
        initial_sidebar_state=("collapsed" if present else "auto") if first else None,
    )
    if present:  # bigger type for the back of the room
        st.markdown("<style>h2 {font-size: 2.4rem; padding-top: 0;} .stCaption, p {font-size: 1.1rem;} "
                    "[data-testid='stMainBlockContainer'] {padding-top: 2.5rem;}</style>",  # one screen at 720p
                    unsafe_allow_html=True)


def main() -> None:
    page_setup()
    first_run = "_restored" not in st.session_state
    ui.init_state()
    mode = st.session_state["mode"]
    if startup.cold(mode, first_run):  # a fresh server: play a preset at once, load the model, rerun
        startup.warm_up_ui(mode)
    ctx = ui.sidebar()
    MODE_UIS[ctx.mode](ctx)
    ui.sync_url()


main()
