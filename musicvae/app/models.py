"""The app's trained models, loaded once per process (``st.cache_resource``).

A checkpoint that fails to load (a broken or foreign file) gives one sentence instead of a
traceback, and the failure is cached like a success: one attempt per process and file, not one
per rerun.  The page then says why and plays presets, as it does with no model installed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

log = logging.getLogger(__name__)


def attempt(path: str, load: Callable[[], Any]) -> tuple[Any, str | None]:
    """(load(), None) or (None, "ErrorType: its first line") for a one-sentence reason.  Torch gets
    one thread first (``MUSICVAE_TORCH_THREADS``): batches here are small, and on a busy 2-core
    machine two threads made a decode 10-50x slower (spin-waits)."""
    try:
        import torch

        torch.set_num_threads(max(1, int(os.environ.get("MUSICVAE_TORCH_THREADS", "1"))))
        return load(), None
    except Exception as error:  # a broken or foreign checkpoint must not take the page down
        log.exception("the model in %s could not be loaded", path)
        return None, f"{type(error).__name__}: {str(error).splitlines()[0][:120] if str(error) else 'no detail'}"


@st.cache_resource(show_spinner="Loading the model ...")
def load_model(key: str, path: str) -> tuple[Any, str | None]:
    """(TrainedModel, None) or (None, why in one sentence)."""
    from musicvae.api import TrainedModel

    model, detail = attempt(path, lambda: TrainedModel.load(path))
    if detail is None:
        return model, None
    return None, (f"The model `{Path(path).name}` could not be loaded ({detail}); "
                  "the app plays the preset grooves instead.")


def get_model(key: str, path: str):
    """The model, or None when it could not be loaded (:func:`load_model` says why)."""
    return load_model(key, path)[0]
