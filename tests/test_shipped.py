"""Regression guard for the shipped checkpoints: each loads and reconstructs as its card says."""

from __future__ import annotations

from pathlib import Path

import pytest

from musicvae.api import CHECKPOINTS_DIR, TrainedModel
from musicvae.evaluation.report import regression_probe

SHIPPED = sorted(p.parent for p in Path(CHECKPOINTS_DIR).glob("*/model.safetensors"))


@pytest.mark.parametrize("folder", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_checkpoint_reconstructs_as_recorded(folder, gmd):
    model = TrainedModel.load(folder)
    recorded = model.meta["metrics"]["regression_probe"]
    probe = regression_probe(model, gmd)
    assert probe["windows"] == recorded["windows"]
    assert probe["accuracy"] == pytest.approx(recorded["accuracy"], abs=0.02)
    assert probe["hit_f1"] == pytest.approx(recorded["hit_f1"], abs=0.02)
    for key in ("accuracy", "sampled_accuracy", "hit_f1", "kl_bits"):
        assert key in model.meta["metrics"]["reconstruction"]
    assert (folder / "MODEL_CARD.md").exists()


def test_both_default_models_are_shipped():
    from musicvae.api import DEFAULT_INTERPOLATE_MODEL, DEFAULT_SAMPLE_MODEL

    names = {p.name for p in SHIPPED}
    assert {DEFAULT_SAMPLE_MODEL, DEFAULT_INTERPOLATE_MODEL} <= names


def test_grid_and_interpolation_ends_are_the_reconstructions():
    """The API's grid puts each corner's own mu in its corner cell, and an interpolation starts and ends
    at the endpoints' mu: at temperature 0 those cells are exactly ``reconstruct``'s grooves."""
    from musicvae.api import DEFAULT_INTERPOLATE_MODEL, shipped_checkpoint
    from musicvae.app.core import load_presets

    model = TrainedModel.load(shipped_checkpoint(DEFAULT_INTERPOLATE_MODEL))
    corners = [p.pattern for p in load_presets()[:4]]
    recon = model.reconstruct(corners)
    cells = model.grid(corners, 3, temperature=0.0)
    assert len(cells) == 9
    for cell, own in zip([cells[i] for i in (0, 2, 6, 8)], recon, strict=True):
        assert cell.same_hits(own)
    ends = model.interpolate(corners[0], corners[1], 5, temperature=0.0)
    assert ends[0].same_hits(recon[0]) and ends[-1].same_hits(recon[1])
    assert ends[0].qpm == corners[0].qpm
