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
