"""The playground's "Humanize" switch (issue 17) through AppTest: every mode, the URL, no groove model.

The tiny categorical models of ``test_app`` serve the modes; a tiny untrained groove model
(``tiny-groovae_4bar_humanize`` with seeded weights: its velocities and offsets are arbitrary but
not 80 and 0) stands in for ``groovae-hier_4bar_humanize`` in a checkpoints folder of its own.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_app import APP, MODEL_NAMES, build_tiny_models, playing, run_ok, switch_mode  # noqa: E402,I001

GROOVE_NAME = "groovae-hier_4bar_humanize"
MAINS = {"sample": "sample_0", "latent": "latent", "interpolate": "interp_view", "grid": "grid_cell"}


def build_feel_models(base: Path) -> Path:
    """A checkpoints folder: the tiny categorical models (links to test_app's) and a tiny groove model."""
    out = base / "feel-models"
    if (out / GROOVE_NAME / "model.safetensors").exists():
        return out
    import torch

    from musicvae.configs import get_config
    from musicvae.model.groove import build_model
    from musicvae.training.checkpoint import model_meta, write_model_files

    tiny = build_tiny_models(base / "tiny-models")
    out.mkdir(parents=True, exist_ok=True)
    for name in MODEL_NAMES:
        if not (out / name).exists():
            (out / name).symlink_to(tiny / name, target_is_directory=True)
    config = get_config("tiny-groovae_4bar_humanize")
    torch.manual_seed(0)
    (out / GROOVE_NAME).mkdir(exist_ok=True)
    write_model_files(out / GROOVE_NAME, build_model(config.hparams), model_meta(config, 0))
    return out


@pytest.fixture
def app(feel_models, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("MUSICVAE_CHECKPOINTS_DIR", str(feel_models))
    return AppTest.from_file(APP, default_timeout=120)


def events(at) -> tuple[set, list, list]:
    """What the looper plays: ({(step, class)}, velocities, offsets)."""
    got = playing(at)["pattern"]["events"]
    return {(e[0], e[1]) for e in got}, [e[2] for e in got], [e[3] for e in got]


def chart(at, key: str) -> str:
    found = [c.proto.spec for c in at.get("plotly_chart") if c.proto.id.endswith(f"-{key}")]
    assert found, f"no chart {key}"
    return found[0]


def test_humanize_in_every_mode_changes_the_feel_not_the_hits(app):
    at = run_ok(app)
    for mode in ("sample", "latent", "interpolate", "grid"):
        switch_mode(at, mode)
        toggle = at.toggle(key="humanize")
        assert toggle.label == "Humanize" and not toggle.disabled and toggle.value is False, mode
        hits, velocities, offsets = events(at)
        assert set(velocities) == {80} and set(offsets) == {0.0}, mode  # the model's grooves on the grid
        user = chart(at, "roll_src_a") if mode == "interpolate" else None
        toggle.set_value(True)
        run_ok(at)
        played_hits, played_velocities, played_offsets = events(at)
        assert played_hits == hits, mode  # the same hits ...
        assert len(set(played_velocities)) > 3 and any(played_offsets), mode  # ... played with feel
        assert '"line-ns"' in chart(at, f"roll_{MAINS[mode]}"), mode  # the roll shows where each hit is played
        if user is not None:
            assert chart(at, "roll_src_a") == user  # your own groove keeps its feel
        assert at.query_params["humanize"] in ("1", ["1"]), mode
        at.toggle(key="humanize").set_value(False)
        run_ok(at)
        assert events(at)[1:] == (velocities, offsets) and "humanize" not in at.query_params, mode


def test_humanize_restores_from_the_url_with_variation_and_take(app, monkeypatch):
    from musicvae.api import GrooveModel

    calls = []
    humanize = GrooveModel.humanize

    def spy(self, patterns, variation=0.0, seed=None):
        calls.append((len(patterns), variation, seed))
        return humanize(self, patterns, variation, seed)

    monkeypatch.setattr(GrooveModel, "humanize", spy)
    app.query_params.update({"mode": "grid", "humanize": "1", "feel": "0.5", "take": "3"})
    at = run_ok(app)
    state = at.session_state
    assert at.toggle(key="humanize").value is True and state["feel_variation"] == 0.5 and state["feel_take"] == 3
    assert (25, 0.5, 3) in calls  # the 5 x 5 grid in one batch, at the variation and take of the URL
    hits, velocities, offsets = events(at)
    assert len(set(velocities)) > 3
    at.button(key="feel_take_btn").click()
    run_ok(at)
    assert state["feel_take"] == 4 and at.query_params["take"] in ("4", ["4"]) and calls[-1] == (25, 0.5, 4)
    played_hits, _, other = events(at)
    assert played_hits == hits and other != offsets  # another take: the same hits played (a little) differently
    calls.clear()
    at.run()
    assert not calls  # a rerun finds every humanized groove in the cache


def test_no_groove_model_disables_the_switch_with_one_sentence(monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("MUSICVAE_CHECKPOINTS_DIR", str(tmp_path))  # nothing installed at all
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["humanize"] = "1"
    run_ok(at)
    toggle = at.toggle(key="humanize")
    assert toggle.disabled and toggle.value is False
    reasons = [c.value for c in at.sidebar.caption if "Humanize" in c.value]
    assert len(reasons) == 1 and reasons[0].count(". ") == 0 and "not installed" in reasons[0]
    assert "humanize" not in at.query_params


def test_a_broken_groove_model_disables_the_switch_and_the_app_works(feel_models, monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    for name in MODEL_NAMES:
        (tmp_path / name).symlink_to((feel_models / name).resolve(), target_is_directory=True)
    broken = tmp_path / GROOVE_NAME
    broken.mkdir()
    (broken / "model.safetensors").write_bytes(b"not weights")
    (broken / "config.json").write_text(json.dumps({"config": "tiny-groovae_4bar_humanize"}))
    monkeypatch.setenv("MUSICVAE_CHECKPOINTS_DIR", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["humanize"] = "1"
    run_ok(at)
    assert at.toggle(key="humanize").disabled
    reasons = [c.value for c in at.sidebar.caption if "Humanize" in c.value]
    assert len(reasons) == 1 and "could not be loaded" in reasons[0] and "Traceback" not in reasons[0]
    assert set(events(at)[1]) == {80}  # the samples play on, on the grid


def test_humanize_reaches_the_pad_the_drawn_path_and_the_walked_morph(app):
    app.query_params.update({"mode": "grid", "puck": "0.3,0.8", "humanize": "1"})
    at = run_ok(app)
    assert "puck at 0.30" in playing(at)["label"] and len(set(events(at)[1])) > 3  # the pad's groove
    at.session_state["grid_path"] = [[0.0, 0.0], [1.0, 1.0]]
    at.session_state["grid_source"] = "path"
    run_ok(at)
    queue = playing(at)["queue"]["patterns"]
    assert len(queue) == 8 and all(len({e[2] for e in groove["events"]}) > 3 for groove in queue)
    switch_mode(at, "interpolate")
    at.toggle(key="interp_follow").set_value(True)
    run_ok(at)
    steps = playing(at)["queue"]["patterns"]
    assert all(any(e[3] for e in groove["events"]) for groove in steps)  # every step of the walk, with feel


def test_latent_prefetch_humanizes_the_next_step_too():
    """With Humanize on, the sliders' background thread also plays the next step's groove with feel
    (through feel.play_one's thread-safe cache), so a step-by-step move finds it ready."""
    import numpy as np

    from musicvae.app import feel
    from musicvae.app import latent as app_latent
    from musicvae.pattern import NUM_CLASSES, DrumPattern

    class Model:
        def decode(self, z, temperature, seed):
            hits = np.zeros((64, NUM_CLASSES), dtype=bool)
            hits[int(round(float(z[0, 0]) * 10)) % 64, 0] = True
            return [DrumPattern(hits)]

    class Groove:
        calls = 0

        def humanize(self, patterns, variation=0.0, seed=None):
            Groove.calls += 1
            return [DrumPattern(p.hits, np.where(p.hits, 99, 0), offsets=np.where(p.hits, 0.25, 0.0)) for p in patterns]

    played = feel.Feel(Groove(), "fake-groove", 0.0, 0)
    app_latent._prefetcher.clear()
    z0 = np.zeros(4, np.float32)
    app_latent.prefetch(Model(), "fake-feel-model", z0, {"z:0": 0.0}, "z:0", 1.0, None, 0.5, 1, played)
    app_latent._prefetcher().submit(lambda: None).result()  # one worker, first in first out: both jobs are done
    assert Groove.calls == 2  # the step ahead and the step back
    ahead = app_latent._DECODED[app_latent._key("fake-feel-model", z0, {"z:0": 0.1}, 0.5, 1)]
    shown = feel.humanize_one(ahead, played)  # what the page does when the slider gets there
    assert Groove.calls == 2 and shown.same_hits(ahead) and shown.velocity_grid()[shown.hits].tolist() == [99]
    assert feel.humanize_one(ahead, None) is ahead  # switch off: as decoded
    app_latent._prefetcher.clear()
    for key in [k for k in app_latent._DECODED if k[0] == "fake-feel-model"]:  # leave no trace for other tests
        del app_latent._DECODED[key]
    feel._SINGLES.clear()


def test_play_many_is_one_batch_that_plays_each_groove_as_play_one_does(feel_models):
    """Latent's new neighbours get their feel in one call of the groove model; each comes out as a call
    of its own would play it (variation 0), so a groove sounds the same whichever way it was reached.
    Above variation 0 a batch's draws would depend on its other grooves: nothing is batched."""
    import numpy as np

    from musicvae.api import GrooveModel
    from musicvae.app import feel
    from musicvae.pattern import NUM_CLASSES, DrumPattern

    model = GrooveModel.load(feel_models / feel.GROOVE_MODEL)
    calls = []

    class Counting:
        def humanize(self, patterns, variation=0.0, seed=None):
            calls.append(len(patterns))
            return model.humanize(patterns, variation, seed)

    rng = np.random.default_rng(3)
    grooves = [DrumPattern(rng.random((64, NUM_CLASSES)) < 0.15) for _ in range(5)]
    feel._SINGLES.clear()
    try:
        played = feel.Feel(Counting(), "batch-test", 0.0, 0)
        feel.play_many(played, grooves + grooves[:2])  # a groove twice: once in the batch
        assert calls == [5] and all(feel.has_one(played, g) for g in grooves)
        batched = [feel.play_one(played, g) for g in grooves]
        assert calls == [5]  # all from the cache
        feel._SINGLES.clear()
        for groove, got in zip(grooves, batched, strict=True):
            alone = feel.play_one(played, groove)
            assert np.array_equal(alone.velocity_grid(), got.velocity_grid())
            assert np.allclose(alone.offset_grid(), got.offset_grid(), atol=1e-5)
        assert calls == [5] + [1] * 5
        feel._SINGLES.clear()
        feel.play_many(feel.Feel(Counting(), "batch-test", 0.3, 2), grooves)
        assert calls == [5] + [1] * 5 and not feel._SINGLES  # with variation: one call each, as before
    finally:
        feel._SINGLES.clear()
