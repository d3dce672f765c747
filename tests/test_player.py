"""The looping player without a browser: the FluidSynth drum kit, the groove data, the mount in AppTest.

The browser side (the scheduler, switches at the bar line, the keyboard) is tested in
``tests/test_player_browser.py``.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from musicvae.app.player import COMPONENT_NAME, pattern_data
from musicvae.media import drumkit
from musicvae.pattern import CLASS_NAMES, NUM_CLASSES, DrumPattern

try:
    from musicvae.media import audio
except ImportError:  # the audio module is moving into musicvae.media
    from musicvae import audio


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    """A kit rendered through the real FluidSynth into a fresh cache folder."""
    return drumkit.load_kit(cache_dir=tmp_path_factory.mktemp("kit-cache"))


def test_kit_is_real_audio_for_every_class_and_layer(kit):
    assert kit.soundfont == str(audio.find_soundfont())  # the soundfont the app plays
    assert kit.sample_rate == audio.SAMPLE_RATE
    assert len(kit.samples) == NUM_CLASSES and kit.layers == drumkit.LAYERS
    for cls, row in enumerate(kit.samples):
        levels = []
        for samples in row:
            assert samples.dtype == np.float32 and 0.05 * kit.sample_rate < len(samples) <= 2.0 * kit.sample_rate
            peak = float(np.max(np.abs(samples)))
            assert peak > 0.01, f"{CLASS_NAMES[cls]} is (nearly) silent"
            assert audio.rms(samples[: kit.sample_rate // 10]) > 0.001
            assert abs(float(samples[-1])) < 0.01  # faded out: no click at the end
            levels.append(peak)
        assert levels == sorted(levels), f"{CLASS_NAMES[cls]}: louder layers must be louder {levels}"
    top = max(float(np.max(np.abs(s))) for row in kit.samples for s in row)
    assert top == pytest.approx(audio.PEAK, abs=2e-4)  # one scale for the whole kit
    # the classes are different sounds (not one sample nine times)
    starts = [row[1][:2000] for row in kit.samples]
    for a in range(NUM_CLASSES):
        for b in range(a + 1, NUM_CLASSES):
            assert not np.allclose(starts[a], starts[b], atol=1e-3), (CLASS_NAMES[a], CLASS_NAMES[b])


def test_kit_is_cached_on_disk_and_in_memory(kit, monkeypatch):
    files = sorted(p.name for p in kit.folder.iterdir())
    assert "kit.json" in files and len(files) == NUM_CLASSES * len(kit.layers) + 1
    meta = json.loads((kit.folder / "kit.json").read_text())
    assert meta["key"] == kit.key and kit.folder.name == f"kit-{kit.key}"
    assert drumkit.load_kit(cache_dir=kit.folder.parent) is kit  # memory
    drumkit._KITS.clear()

    def no_render(*args, **kwargs):
        raise AssertionError("rendered again although the kit is on disk")

    monkeypatch.setattr(drumkit, "render_kit_samples", no_render)
    again = drumkit.load_kit(cache_dir=kit.folder.parent)  # disk
    assert again.key == kit.key
    for row_a, row_b in zip(again.samples, kit.samples, strict=True):
        for a, b in zip(row_a, row_b, strict=True):
            np.testing.assert_array_equal(a, b)


def test_kit_payload_is_data_urls_of_wavs(kit):
    payload = drumkit.kit_payload(kit)
    assert payload["id"] == kit.key and payload["layers"] == list(kit.layers)
    assert payload["classes"] == list(CLASS_NAMES)
    for cls, row in enumerate(payload["samples"]):
        for layer, url in enumerate(row):
            head, b64 = url.split(",", 1)
            assert head == "data:audio/wav;base64"  # nothing to fetch: no network, no CDN
            samples, rate = audio.decode_wav(base64.b64decode(b64))
            assert rate == kit.sample_rate
            np.testing.assert_allclose(samples, kit.samples[cls][layer], atol=1 / 16384)
    assert drumkit.kit_payload(kit) is payload  # encoded once


def _envelope(samples: np.ndarray, block: int = 220) -> np.ndarray:
    n = len(samples) // block * block
    return np.sqrt((samples[:n].reshape(-1, block) ** 2).mean(axis=1))


def test_kit_sounds_like_the_fluidsynth_render(kit):
    """The looper's mix (layers, velocity gains, hi-hat choke) follows the WAV export's FluidSynth
    render: the same 10 ms loudness envelope, at one level ratio whatever the velocities."""
    synth = audio.default_synth()
    hits = np.zeros((32, NUM_CLASSES), dtype=bool)
    hits[0::4, 0] = hits[4::8, 1] = hits[0::2, 2] = hits[::4, 8] = True
    hits[3::8, 2], hits[3::8, 3] = False, True  # open hats, cut by the next closed hat
    hits[7, 4] = hits[12, 5] = hits[14, 6] = hits[0, 7] = True
    rng = np.random.default_rng(3)
    ratios = []
    for velocity in (50, 80, 110, None):
        grid = rng.integers(30, 128, size=hits.shape) if velocity is None else np.full(hits.shape, velocity)
        groove = DrumPattern(hits, np.where(hits, grid, 0).astype(np.uint8))
        events, seconds = audio.pattern_events(groove, 120)
        reference = _envelope(synth.render_events(events, seconds, loop=False))
        played = _envelope(drumkit.mix_pattern(kit, groove, 120))[: len(reference)]
        reference = reference[: len(played)]
        assert np.corrcoef(played, reference)[0, 1] > 0.95, velocity
        ratios.append(played.sum() / reference.sum())
    assert max(ratios) / min(ratios) < 1.1, ratios


def test_pattern_data_forms():
    steps = [[0], [2], [1, 2], []]
    data = pattern_data(steps)
    assert data["steps"] == 4
    assert data["events"] == [[0, 0, 80, 0.0], [1, 2, 80, 0.0], [2, 1, 80, 0.0], [2, 2, 80, 0.0]]
    grid = np.zeros((4, NUM_CLASSES), dtype=bool)
    grid[0, 0] = grid[1, 2] = grid[2, 1] = grid[2, 2] = True
    assert pattern_data(grid)["id"] == data["id"] == pattern_data(grid.astype(int).tolist())["id"]
    velocities = np.where(grid, 100, 0)
    offsets = np.where(grid, 0.9, 0.0)
    offsets[2, 1] = -0.25
    rich = pattern_data(grid, velocities=velocities, offsets=offsets)
    assert rich["events"] == [[0, 0, 100, 0.5], [1, 2, 100, 0.5], [2, 1, 100, -0.25], [2, 2, 100, 0.5]]
    assert rich["id"] != data["id"]
    groove = DrumPattern(grid, np.where(grid, 33, 0).astype(np.uint8))
    assert [e[2] for e in pattern_data(groove)["events"]] == [33, 33, 33, 33]
    with pytest.raises(ValueError):
        pattern_data([[9]])
    with pytest.raises(ValueError):
        pattern_data(np.zeros((4, 8), dtype=bool))
    with pytest.raises(ValueError):
        pattern_data(grid, velocities=np.zeros((3, NUM_CLASSES)))


def _looper_app():
    import numpy as np
    import streamlit as st

    from musicvae.app.player import looper

    hits = np.zeros((64, 9), dtype=bool)
    hits[::4, 0] = True
    hits[int(st.session_state.get("shift", 0))::8, 1] = True
    qpm = float(st.session_state.get("qpm", 120))
    state = looper(hits, qpm, key="player", label="Groove A", switch_at=st.session_state.get("at", "bar"))
    st.session_state["last_state"] = state


def _component_data(at) -> dict:
    elements = [e for e in at.main if getattr(e.proto, "component_name", None) == COMPONENT_NAME]
    assert len(elements) == 1, [type(e).__name__ for e in at.main]
    return json.loads(elements[0].proto.bytes)


def test_looper_mounts_in_apptest(kit, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv(drumkit.CACHE_ENV, str(kit.folder.parent))
    at = AppTest.from_function(_looper_app, default_timeout=30).run()
    assert not at.exception, at.exception
    data = _component_data(at)
    assert data["qpm"] == 120.0 and data["switch_at"] == "bar" and data["label"] == "Groove A"
    assert data["kit_id"] == kit.key and data["kit"]["id"] == kit.key  # the browser has no kit yet
    assert data["pattern"]["steps"] == 64 and len(data["pattern"]["events"]) == 16 + 8
    state = at.session_state["last_state"]
    assert state.playing is False and state.command is None and state.pattern_id == data["pattern"]["id"]
    first_id = data["pattern"]["id"]

    at.session_state["shift"] = 4
    at.session_state["qpm"] = 90
    at.session_state["at"] = "beat"
    at.run()
    assert not at.exception, at.exception
    data = _component_data(at)
    assert data["qpm"] == 90.0 and data["switch_at"] == "beat" and data["pattern"]["id"] != first_id
    assert data["kit"] is not None  # still no word from a browser: the kit goes along again

    at.session_state["player"] = {"playing": True, "kit": kit.key}  # what looper.js reports once decoded
    at.run()
    assert not at.exception, at.exception
    data = _component_data(at)
    assert data["kit"] is None and data["kit_id"] == kit.key  # a rerun carries the groove only
    assert len(json.dumps(data)) < 2000
    state = at.session_state["last_state"]
    assert state.kit_loaded and state.playing


def test_looper_rejects_bad_switch():
    from musicvae.app.player import looper

    with pytest.raises(ValueError, match="switch_at"):
        looper([[0]] * 16, key="player", switch_at="now")
