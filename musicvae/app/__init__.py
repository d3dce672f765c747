"""The Streamlit playground (``streamlit run streamlit_app.py``): the only package that imports Streamlit.

``core`` is the logic without Streamlit (models on disk, presets, scores, exports); ``ui`` holds the
shared widgets, state and cached resources; ``modes`` the Sample, Interpolate and Grid pages and
``latent`` the Latent sliders page; ``feel`` the "Humanize" switch.  Every model call goes through
:class:`musicvae.api.TrainedModel` (the groove model's through :class:`musicvae.api.GrooveModel`).
"""
