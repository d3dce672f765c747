"""``musicvae render`` through midi2audio and the fluidsynth program: the same audio as the app's
in-process renderer (level and onsets), and one-sentence errors for each of midi2audio's pitfalls."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from musicvae.data.sources import default_gmd_dir
from musicvae.media import audio, offline

REPO = Path(__file__).resolve().parent.parent
GMD_FILE = default_gmd_dir() / "drummer1" / "session1" / "1_funk_80_beat_4-4.mid"
HOP = 110  # 5 ms at 22.05 kHz


def envelope(samples: np.ndarray) -> np.ndarray:
    frames = samples[: len(samples) // HOP * HOP].reshape(-1, HOP)
    return np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))


def onsets(samples: np.ndarray) -> np.ndarray:
    """Frame indexes where the energy jumps (a hit starts)."""
    env = envelope(samples)
    rise = np.diff(env, prepend=0.0)
    peaks = (rise > 0.02 * env.max()) & (rise >= np.roll(rise, 1)) & (rise >= np.roll(rise, -1))
    return np.flatnonzero(peaks)


@pytest.fixture(scope="module")
def both():
    data = GMD_FILE.read_bytes()
    in_process, _ = audio.decode_wav(audio.render_midi(data, qpm=100, repeats=2))
    through_program, _ = audio.decode_wav(offline.render_midi_offline(data, qpm=100, repeats=2))
    return in_process, through_program


def test_the_program_render_matches_the_in_process_one_in_level_and_onsets(both):
    a, b = both
    assert len(a) == len(b)
    assert audio.rms(b) == pytest.approx(audio.rms(a), rel=0.05)
    ea, eb = envelope(a), envelope(b)  # measured: 0.964 at a 5 ms lag (the program steps its events by blocks)
    assert max(np.corrcoef(ea, np.roll(eb, lag))[0, 1] for lag in range(-2, 3)) > 0.95
    oa, ob = onsets(a), onsets(b)
    assert len(oa) > 500 and abs(len(ob) - len(oa)) <= 0.05 * len(oa)
    nearest = np.array([ob[np.argmin(np.abs(ob - o))] - o for o in oa])
    assert abs(np.median(nearest)) <= 2  # within 10 ms (measured: 5 ms late)
    assert np.mean(np.abs(nearest) <= 4) > 0.9  # within 20 ms (measured: 95% of 1,273 onsets)

def test_pitfalls_are_one_sentence_errors(tmp_path, monkeypatch):
    data = GMD_FILE.read_bytes()
    with pytest.raises(audio.AudioError, match="does not exist"):  # would silently fall back to default-GM
        offline.render_midi_offline(data, soundfont=tmp_path / "typo.sf2")
    monkeypatch.setattr(offline.shutil, "which", lambda name: None)
    with pytest.raises(audio.AudioError, match="fluidsynth program is not installed"):
        offline.render_midi_offline(data)
    monkeypatch.undo()
    # the program fails (exit status ignored by midi2audio) and writes nothing: a fake that only exits 1
    fake = tmp_path / "bin" / "fluidsynth"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'fluidsynth: error: out of luck' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(audio.AudioError, match="wrote no audio .*out of luck"):
        offline.render_midi_offline(data)


def test_the_cli_renders_quietly_and_reports_a_missing_file(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = tmp_path / "out.wav"
    done = subprocess.run([sys.executable, "-m", "musicvae.cli", "render", str(GMD_FILE), str(out), "--repeats", "1"],
                          env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "midi2audio" in done.stdout and "FluidSynth runtime" not in done.stdout + done.stderr
    samples, rate = audio.decode_wav(out.read_bytes())
    assert rate == audio.SAMPLE_RATE and audio.rms(samples) > 0.01
    done = subprocess.run([sys.executable, "-m", "musicvae.cli", "render", str(tmp_path / "nope.mid"),
                           str(tmp_path / "x.wav")], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "cannot read" in done.stderr
    assert not (tmp_path / "x.wav").exists()
