"""Real FluidSynth rendering, the piano-roll figures, latent directions and the app's plain logic."""

from __future__ import annotations

import argparse
import io
import zipfile

import numpy as np
import pytest

from musicvae.app import core as app_core
from musicvae.data.sources import default_gmd_dir
from musicvae.media import audio, plots
from musicvae.pattern import CLASS_NAMES, DrumPattern

GROOVE = default_gmd_dir()
RMS_FLOOR = 0.01


def groove(qpm: float = 120.0) -> DrumPattern:
    pattern = DrumPattern.empty(qpm=qpm)
    pattern.hits[::4, 0] = True  # kick on every beat
    pattern.hits[4::8, 1] = True  # snare on 2 and 4
    pattern.hits[::2, 2] = True  # closed hat on 8ths
    pattern.velocities = np.where(pattern.hits, 100, 0).astype(np.uint8)
    pattern.velocities[::8, 2] = 40
    return pattern



def test_render_pattern_is_a_loud_enough_mono_wav_of_the_right_length(synth):
    wav = audio.render_pattern(groove(), qpm=120, repeats=1)
    samples, rate = audio.decode_wav(wav)
    assert rate == audio.SAMPLE_RATE == 22050
    assert len(samples) == 8 * rate  # 4 bars of 4/4 at 120 qpm, loop-folded to exactly 8 s
    assert audio.rms(samples) > RMS_FLOOR
    assert 0.8 < np.abs(samples).max() <= 0.9  # peak-normalised to -1 dBFS
    assert len(wav) < 400_000  # ~350 kB per 4-bar groove at 120 qpm


def test_tempo_and_repeats_scale_the_length(synth):
    fast, rate = audio.decode_wav(audio.render_pattern(groove(), qpm=160, repeats=2))
    assert len(fast) == round(2 * 6.0 * rate)
    ring, _ = audio.decode_wav(audio.render_pattern(groove(), qpm=120, loop=False))
    assert len(ring) == round((8 + audio.TAIL_SECONDS) * rate)


def test_sequence_and_silence(synth):
    samples, rate = audio.decode_wav(audio.render_sequence([groove(), groove()], 120))
    assert len(samples) == round((16 + audio.TAIL_SECONDS) * rate) and audio.rms(samples) > RMS_FLOOR
    quiet, _ = audio.decode_wav(audio.render_pattern(DrumPattern.empty(), 120))
    assert len(quiet) == 8 * rate and audio.rms(quiet) == 0.0  # no hits: silence of the right length


def test_render_midi_of_a_gmd_file_and_the_cli_handler(synth, tmp_path):
    files = sorted(GROOVE.glob("drummer1/session1/*_beat_4-4.mid"))
    if not files:
        pytest.skip("GMD not available")
    wav = audio.render_midi(files[0].read_bytes())
    samples, rate = audio.decode_wav(wav)
    assert len(samples) > 5 * rate and audio.rms(samples) > RMS_FLOOR
    midi = tmp_path / "in.mid"
    midi.write_bytes(groove().to_midi_bytes(100))
    out = tmp_path / "out.wav"
    args = argparse.Namespace(input=midi, output=out, qpm=None, repeats=2, soundfont=None,
                              sample_rate=audio.SAMPLE_RATE)
    from musicvae.cli import render

    assert render.run(args) == 0
    samples, rate = audio.decode_wav(out.read_bytes())
    assert abs(len(samples) / rate - (2 * 9.6 + audio.TAIL_SECONDS)) < 0.01 and audio.rms(samples) > RMS_FLOOR
    with pytest.raises(ValueError):
        audio.render_midi(b"not a midi file")


def test_midi_events_keep_every_note_pretty_midi_reads():
    """`render` reads with our reader now; on a clean GMD file it finds every note pretty_midi finds (same
    onset, pitch, velocity, drum channel) at any tempo, plus the rare note no note-off closes, which
    pretty_midi drops, and the same whole-bar length."""
    import collections

    import pretty_midi

    path = GROOVE / "drummer1/session1/1_funk_80_beat_4-4.mid"
    if not path.exists():
        pytest.skip("GMD not available")
    data = path.read_bytes()
    midi = pretty_midi.PrettyMIDI(io.BytesIO(data))
    first_qpm = float(midi.get_tempo_changes()[1][0])
    for qpm in (None, 97.0):
        scale = first_qpm / qpm if qpm else 1.0
        events, seconds = audio.midi_events(data, qpm)
        ours = collections.defaultdict(list)
        for e in events:
            ours[e.pitch, e.velocity].append(e.time)
        notes = [n for inst in midi.instruments for n in inst.notes]
        for n in notes:  # every note of theirs is one of ours, within float rounding
            times = ours[n.pitch, n.velocity]
            match = min(range(len(times)), key=lambda i: abs(times[i] - n.start * scale), default=None)
            assert match is not None and abs(times.pop(match) - n.start * scale) < 1e-6, n
        assert 0 <= len(events) - len(notes) <= 0.01 * len(events)
        assert all(e.channel == audio.DRUM_CHANNEL for e in events)
        bar = 4 * 60.0 / (qpm or first_qpm)
        assert seconds == pytest.approx(np.ceil(midi.get_end_time() * scale / bar - 1e-6) * bar)


def test_missing_or_wrong_soundfont_is_an_error_not_silence(monkeypatch, tmp_path):
    with pytest.raises(audio.AudioError, match="does not exist"):
        audio.DrumSynth(tmp_path / "nope.sf2")
    bogus = tmp_path / "bogus.sf2"
    bogus.write_bytes(b"RIFF0000sfbk")
    with pytest.raises(audio.AudioError):
        audio.DrumSynth(bogus)
    monkeypatch.setattr(audio, "soundfont_candidates", lambda: [tmp_path / "a.sf2", tmp_path / "b.sf2"])
    with pytest.raises(audio.AudioError, match="apt-get install fluid-soundfont-gm"):
        audio.find_soundfont()


def test_piano_roll_structure():
    pattern = groove()
    fig = plots.piano_roll(pattern, "demo")
    (trace,) = fig.data
    z = plots.decode_typed(trace.z).astype(float)
    assert z.shape == (9, 64)
    assert z[0, 0] == 100 and z[2, 0] == 40 and np.isnan(z[1, 0])  # velocity as colour, gaps where silent
    assert list(fig.layout.yaxis.ticktext)[0] == "kick" and len(fig.layout.yaxis.ticktext) == len(CLASS_NAMES)
    assert list(fig.layout.yaxis.tickvals) == list(range(9))  # row 0 (kick) at the bottom
    text = np.asarray(trace.text)
    assert text[1, 20] == "bar 2, beat 2<br>snare<br>velocity 100"
    assert text[3, 1] == "bar 1, beat 1 + 1/4<br>open hi-hat"
    lines = [s for s in fig.layout.shapes if s.x0 == s.x1]
    assert len(lines) == 17  # 5 bar lines + 12 beat lines
    assert sum(1 for s in lines if s.line.width == 2) == 5
    compact = plots.piano_roll(pattern, compact=True)
    assert not compact.layout.xaxis.showticklabels and not compact.data[0].showscale


def test_roll_titles_are_text_not_markup():
    """Upload names reach the titles: plotly would read <a>, <b> and <br> in them as markup."""
    name = "⬆ <b>loud</b> & <a href='https://example.invalid'>link</a><br>.mid · bars 1-4"
    fig = plots.piano_roll(groove(), name)
    assert fig.layout.title.text == ("⬆ &lt;b&gt;loud&lt;/b&gt; &amp; &lt;a href='https://example.invalid'&gt;link"
                                     "&lt;/a&gt;&lt;br&gt;.mid · bars 1-4")
    assert plots.piano_roll(groove(), "step A of 5").layout.title.text == "step A of 5"


def test_mosaic_is_one_heatmap_with_click_targets():
    patterns = [groove(), DrumPattern.empty(), groove(), groove(), groove()]
    fig = plots.mosaic(patterns, cols=2, labels=list("abcde"), highlight=3)
    heatmap, targets = fig.data
    z = plots.decode_typed(heatmap.z)
    assert z.shape == (3 * 12 - 3, 2 * 65 - 1)  # labelled rows are 3 cells apart, columns 1
    assert z[24, 64] == 0 and z[24, 0] == 2 + 100  # gap column; top-left groove, kick at step 0
    assert z[24, 65] == 1 and z[0, 70] == 0  # an empty groove's cells; no sixth groove
    assert len(fig.layout.annotations) == 5 and len(fig.layout.shapes) == 1
    assert len(targets.x) == 5 and [list(c) for c in targets.customdata][3] == [2, 2, 4]
    assert targets.y[0] > targets.y[4]  # the first groove at the top
    assert plots.mosaic_index([{"customdata": [2, 2]}], cols=2) == 3
    assert plots.mosaic_index([{"customdata": {"0": 3, "1": 1}}], cols=2) == 4  # typed-array form
    assert plots.mosaic_index([{"curve_number": 1, "point_index": 2}], cols=2) == 2
    assert plots.mosaic_index([], cols=2) is None
    grid = plots.mosaic([groove()] * 121, cols=11)
    assert len(grid.to_json()) < 150_000
    import json

    assert json.loads(fig.to_json())["data"][0]["z"]["dtype"] == "u1"  # a typed array, not a list


def test_principal_directions_find_the_known_axis():
    from musicvae.latent.directions import principal_directions

    rng = np.random.default_rng(0)
    axis = np.zeros(8)
    axis[3] = 1.0
    amount = rng.normal(size=500)
    mu = rng.normal(scale=0.05, size=(500, 8)) + 2.0 * amount[:, None] * axis
    found = principal_directions(mu, hits_per_window=-amount, k=3)
    assert abs(found.vectors[0] @ axis) > 0.99 and found.entries[0]["explained_variance"] > 0.9
    assert found.vectors[0] @ axis < 0  # sign flipped so that + correlates with more hits
    assert abs(found.scales[0] - 2.0) < 0.2


def test_directions_round_trip(tmp_path):
    from musicvae.latent.directions import load_directions, principal_directions, save_directions

    found = principal_directions(np.random.default_rng(1).normal(size=(50, 4)), k=2)
    save_directions(tmp_path, found)
    back = load_directions(tmp_path, z_size=4)
    assert back is not None and back.names == ["PC1", "PC2"]
    assert np.allclose(back.offset({0: 2.0}), 2.0 * found.scales[0] * found.vectors[0])
    assert load_directions(tmp_path, z_size=5) is None and load_directions(tmp_path / "none") is None


def test_app_core_helpers(tmp_path):
    from musicvae.api import bilinear_weights

    weights = bilinear_weights(3)
    assert weights.shape == (9, 4) and np.allclose(weights.sum(axis=1), 1)
    assert np.allclose(weights[[0, 2, 6, 8]], np.eye(4)) and np.allclose(weights[4], 0.25)
    a, b = groove(), DrumPattern.empty()
    assert app_core.reconstruction_scores(a, a)["hit_f1"] == 1.0
    assert app_core.reconstruction_scores(a, b)["hit_recall"] == 0.0
    assert app_core.parse_number("7", int, 3, 16, 5) == 7 and app_core.parse_number("99", int, 3, 16, 5) == 16
    assert app_core.parse_number("nan", float, 0.1, 2, 0.5) == 0.5 and app_core.parse_number(None, int, 0, 1, 1) == 1
    assert app_core.safe_file_stem("../../etc/passwd") == "etc-passwd"
    (tmp_path / "metrics.json").write_text('{"test": {"hit_f1": 0.91, "kl_bits": 40.5}}')
    assert app_core.headline_metrics(tmp_path) == {"hit F1": 0.91, "KL bits": 40.5, "split": "test"}
    data = app_core.build_zip([a, a], ["s1", "s2"], 120, lambda p: b"RIFF", {"morph.wav": b"x"})
    assert sorted(zipfile.ZipFile(io.BytesIO(data)).namelist()) == ["morph.wav", "s1.mid", "s1.wav", "s2.mid", "s2.wav"]
    presets = app_core.load_presets()
    assert len(presets) >= 24 and all(p.pattern.num_steps == 64 and p.pattern.num_hits > 0 for p in presets)
    assert len({p.info["style"].split("/")[0] for p in presets}) >= 10
    assert all(p.info["split"] in ("train", "validation") for p in presets)
