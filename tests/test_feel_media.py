"""Human feel in the media (issue 17): WAV events, the looper's offline mix, the looper's data and the roll
place each hit at step + offset with its own velocity; a quantized groove is unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from musicvae.app import core
from musicvae.app.player import pattern_data
from musicvae.media import audio, drumkit, plots
from musicvae.pattern import NUM_CLASSES, DrumPattern

QPM = 120.0
STEP = 60.0 / QPM / 4  # 0.125 s


def one_hit(step: int, offset: float | None, velocity: int = 100, cls: int = 0, steps: int = 16) -> DrumPattern:
    hits = np.zeros((steps, NUM_CLASSES), dtype=bool)
    hits[step, cls] = True
    off = None if offset is None else np.where(hits, offset, 0.0)
    return DrumPattern(hits, np.where(hits, velocity, 0).astype(np.uint8), QPM, offsets=off)


def onset(samples: np.ndarray, rate: int) -> float:
    """Seconds to the first sample louder than 10% of the peak."""
    loud = np.nonzero(np.abs(samples) > 0.1 * np.abs(samples).max())[0]
    return float(loud[0]) / rate


def test_pattern_events_place_hits_at_their_offsets_never_before_zero():
    events, seconds = audio.pattern_events(one_hit(4, 0.4, velocity=37), QPM)
    assert seconds == pytest.approx(16 * STEP)
    (event,) = events
    assert event.time == pytest.approx(4.4 * STEP) and event.velocity == 37  # late, at its own velocity
    (early,) = audio.pattern_events(one_hit(4, -0.3), QPM)[0]
    assert early.time == pytest.approx(3.7 * STEP)
    # played early on the very first step: starts at 0, not before; in a repeat it leads that repeat's downbeat
    first, second = audio.pattern_events(one_hit(0, -0.25), QPM, repeats=2)[0]
    assert first.time == 0.0 and second.time == pytest.approx((16 - 0.25) * STEP)
    (plain,) = audio.pattern_events(one_hit(4, None), QPM)[0]
    assert plain.time == pytest.approx(4 * STEP)  # no offsets: on the grid, as before



def test_wav_export_renders_a_late_hit_later(synth):
    on_grid, rate = audio.decode_wav(audio.render_pattern(one_hit(4, 0.0), QPM, loop=False, synth=synth))
    late, _ = audio.decode_wav(audio.render_pattern(one_hit(4, 0.4), QPM, loop=False, synth=synth))
    assert onset(late, rate) - onset(on_grid, rate) == pytest.approx(0.4 * STEP, abs=0.004)  # 50 ms later
    early, _ = audio.decode_wav(audio.render_pattern(one_hit(0, -0.4), QPM, loop=False, synth=synth))
    assert onset(early, rate) < 0.008  # at the start (FluidSynth's attack wobbles by a few ms from render to render)


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    try:
        return drumkit.load_kit(cache_dir=tmp_path_factory.mktemp("kit-cache"))
    except (audio.AudioError, drumkit.KitError) as error:
        pytest.skip(str(error))


def test_looper_mix_places_hits_at_their_offsets_and_velocities(kit):
    rate = kit.sample_rate
    on_grid = drumkit.mix_pattern(kit, one_hit(4, 0.0), QPM)
    late = drumkit.mix_pattern(kit, one_hit(4, 0.4), QPM)
    assert onset(late, rate) - onset(on_grid, rate) == pytest.approx(0.4 * STEP, abs=0.002)
    early, first = drumkit.mix_pattern(kit, one_hit(0, -0.4), QPM), drumkit.mix_pattern(kit, one_hit(0, 0.0), QPM)
    assert np.array_equal(early, first)  # played early on the first step: starts at 0, like the looper's first pass
    soft = drumkit.mix_pattern(kit, one_hit(4, 0.0, velocity=30), QPM)
    assert np.abs(soft).max() < 0.5 * np.abs(on_grid).max()  # its own velocity


def test_the_looper_gets_a_patterns_own_offsets():
    hits = np.zeros((16, NUM_CLASSES), dtype=bool)
    hits[0, 0] = hits[4, 1] = True
    played = DrumPattern(hits, np.where(hits, 90, 0), offsets=np.where(hits, 0.2, 0.0))
    played.offsets[0, 0] = -0.1
    assert pattern_data(played)["events"] == [[0, 0, 90, -0.1], [4, 1, 90, 0.2]]
    assert pattern_data(played.quantized())["events"] == [[0, 0, 80, 0.0], [4, 1, 80, 0.0]]
    assert pattern_data(played)["id"] != pattern_data(DrumPattern(hits, np.where(hits, 90, 0)))["id"]
    assert pattern_data(played, offsets=np.zeros(hits.shape))["events"][0][3] == 0.0  # explicit offsets win


def test_roll_ticks_show_offsets_only_for_grooves_with_a_feel():
    hits = np.zeros((64, NUM_CLASSES), dtype=bool)
    hits[::4, 0] = hits[4::8, 1] = True
    quantized = DrumPattern(hits)
    offsets = np.where(hits, 0.25, 0.0)
    offsets[4, 1] = -0.1
    played = DrumPattern(hits, np.where(hits, 70, 0), offsets=offsets)
    assert len(plots.piano_roll(quantized).data) == 1  # as before: one heatmap, no ticks
    on_grid = DrumPattern(hits, np.where(hits, 70, 0), offsets=np.zeros(hits.shape))  # e.g. a quantized MIDI file
    assert len(plots.piano_roll(on_grid).data) == 1 and "offset" not in str(plots.piano_roll(on_grid).data[0].text)
    assert "offset" not in str(np.asarray(plots.piano_roll(quantized).data[0].text).tolist())
    figure = plots.piano_roll(played, qpm=100)
    heatmap, ticks = figure.data
    steps, classes = np.nonzero(hits)
    x = plots.decode_typed(ticks.x)
    assert len(x) == len(steps) and np.allclose(x, steps + offsets[steps, classes])  # each hit where it is played
    assert list(plots.decode_typed(ticks.y)) == classes.tolist() and ticks.hoverinfo == "skip"
    text = np.asarray(heatmap.text)
    assert text[0, 0].endswith("velocity 70<br>offset +38 ms (late)")  # 0.25 of a 16th at 100 qpm = 37.5 ms
    assert text[1, 4].endswith("offset -15 ms (early)") and "offset" not in text[2, 0]
    editable = plots.piano_roll(played, editable=True)
    assert [t.type for t in editable.data] == ["heatmap", "scatter", "scatter"] and editable.data[-1].customdata
    assert len(plots.piano_roll(DrumPattern.empty().quantized(), editable=True).data) == 2


def test_describe_says_how_a_groove_is_played():
    hits = np.zeros((16, NUM_CLASSES), dtype=bool)
    hits[0, 0] = hits[8, 1] = True
    assert core.describe(DrumPattern(hits)) == "2 hits: kick 1, snare 1"
    played = DrumPattern(hits, np.where(hits, 40, 0), offsets=np.where(hits, 0.2, 0.0))
    played.velocities[8, 1] = 110
    played.offsets[0, 0] = -0.1
    assert core.describe(played, 120) == "2 hits: kick 1, snare 1 · played: velocity 40-110, -12 to +25 ms off the grid"
    played.offsets[:] = 0
    assert core.describe(played, 120) == "2 hits: kick 1, snare 1 · played: velocity 40-110"


def test_the_apps_wav_exports_carry_the_feel(synth):
    """The app's cached WAV download and the whole-morph WAV play each hit at its offset."""
    from musicvae.app import modes, ui

    late, on_grid = one_hit(4, 0.4), one_hit(4, 0.0)
    played, rate = audio.decode_wav(ui.wav_bytes(late, QPM))
    plain, _ = audio.decode_wav(ui.wav_bytes(on_grid, QPM))
    assert onset(played, rate) - onset(plain, rate) == pytest.approx(0.4 * STEP, abs=0.004)
    morph, _ = audio.decode_wav(modes._morph_wav((on_grid.hits.tobytes(), late.hits.tobytes()),
                                                 (modes._vel(on_grid), modes._vel(late)), int(QPM),
                                                 (modes._off(on_grid), modes._off(late))))
    second = morph[int(16 * STEP * rate):]  # the late groove, after the first one's 16 steps
    assert onset(second, rate) - onset(plain, rate) == pytest.approx(0.4 * STEP, abs=0.004)
