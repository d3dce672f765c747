"""Shared fixtures: the real GMD data and a tiny prepared dataset built from it; a nudged tiny model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from musicvae.data.sources import default_gmd_dir

REPO = Path(__file__).resolve().parent.parent
GMD = default_gmd_dir()



def nudged_tiny_model(overrides: dict | None = None):
    """A tiny MusicVAE with a seeded random nudge on every weight: a fresh one decodes almost constant
    tokens (its output layer starts near zero), a nudged one decodes varied grooves."""
    import torch

    from musicvae.configs import get_config
    from musicvae.model.network import MusicVAE

    torch.manual_seed(0)
    model = MusicVAE(get_config("tiny-hier-drums_4bar", overrides).hparams).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.3 * torch.randn_like(param))
    return model


# A few real GMD files: train grooves, a validation groove, a test groove, and a 3/4 groove.
SMALL_GMD_FILES = {
    "drummer1/session1/1_funk_80_beat_4-4.mid": "train",
    "drummer1/session1/10_jazz-funk_116_fill_4-4.mid": "train",  # a 1-bar fill: no window
    "drummer1/session1/126_funk-fast_125_beat_4-4.mid": "validation",
    "drummer1/eval_session/1_funk-groove1_138_beat_4-4.mid": "test",
}


@pytest.fixture(scope="session")
def gmd() -> Path:
    if not (GMD / "info.csv").exists():
        pytest.fail(f"the Groove MIDI Dataset is expected at {GMD} (the repository's data/groove/, or set GMD_DIR)")
    return GMD


@pytest.fixture(scope="session")
def small_gmd(gmd: Path, tmp_path_factory) -> Path:
    """A GMD-style folder (info.csv with a split column) holding a handful of real files."""
    root = tmp_path_factory.mktemp("small_gmd")
    lines = ["midi_filename,split"]
    for rel, split in SMALL_GMD_FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(gmd / rel, root / rel)
        lines.append(f"{rel},{split}")
    (root / "info.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="session")
def small_data(small_gmd: Path, tmp_path_factory) -> Path:
    from musicvae.data.prepare import prepare
    from musicvae.data.sources import PrepareSettings

    out = tmp_path_factory.mktemp("small_data")
    prepare(small_gmd, out, PrepareSettings(), num_workers=1, progress=False)
    return out


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Tiny models run faster on one thread (measured: 2 threads wait on each other)."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def synth():
    """The app's FluidSynth drum synth (the real soundfont); the test is skipped where there is none."""
    from musicvae.media import audio

    try:
        return audio.default_synth()
    except audio.AudioError as error:
        pytest.skip(str(error))


@pytest.fixture(scope="session")
def feel_models(tmp_path_factory) -> Path:
    """The tiny app models plus a tiny humanize model, in a checkpoints folder of their own."""
    from test_app_feel import build_feel_models

    return build_feel_models(tmp_path_factory.getbasetemp())
