"""MusicVAE drum playground: ``streamlit run streamlit_app.py``.

Sample, steer, interpolate and blend 4-bar drum grooves with a hierarchical MusicVAE; see them
as piano rolls, hear them through FluidSynth, bring your own MIDI and take the results home.
The logic lives in ``musicvae/app_core.py``; widgets in ``musicvae/app_ui.py``,
``musicvae/app_modes.py`` (Sample, Interpolate, Grid) and ``musicvae/app_latent.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run from anywhere without installing

from musicvae import app_latent, app_modes, app_ui  # noqa: E402

MODE_UIS = {
    "sample": app_modes.sample_ui,
    "latent": app_latent.latent_ui,
    "interpolate": app_modes.interpolate_ui,
    "grid": app_modes.grid_ui,
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
        st.markdown("<style>h2 {font-size: 2.4rem;} .stCaption, p {font-size: 1.1rem;}</style>",
                    unsafe_allow_html=True)


def main() -> None:
    page_setup()
    app_ui.init_state()
    ctx = app_ui.sidebar()
    MODE_UIS[ctx.mode](ctx)
    app_ui.sync_url()


main()
