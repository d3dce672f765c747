"""The repository's own drum soundfont (assets/soundfont/): small, licensed, looked up after
$MUSICVAE_SOUNDFONT, and sounding as Debian's FluidR3_GM did (kit and WAV export)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from musicvae.media import audio, drumkit
from musicvae.pattern import DrumPattern

REPO = Path(__file__).resolve().parent.parent
OURS = REPO / "assets" / "soundfont" / "FluidR3_GM_drums.sf2"
DEBIAN = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")


def test_the_bundled_soundfont_is_small_licensed_and_found_first(monkeypatch):
    assert OURS.stat().st_size < 5_000_000
    assert "MIT" in (OURS.parent / "LICENSE").read_text()
    monkeypatch.delenv(audio.SOUNDFONT_ENV, raising=False)
    assert audio.find_soundfont() == OURS.resolve()
    assert audio.DrumSynth(OURS).kit_name == "Standard"


def test_an_explicit_soundfont_wins_and_a_wrong_one_is_an_error(monkeypatch, tmp_path):
    other = tmp_path / "mine.sf2"
    other.write_bytes(OURS.read_bytes())
    monkeypatch.setenv(audio.SOUNDFONT_ENV, str(other))
    assert audio.find_soundfont() == other.resolve()
    monkeypatch.setenv(audio.SOUNDFONT_ENV, str(tmp_path / "typo.sf2"))
    with pytest.raises(audio.AudioError, match="not a file"):
        audio.find_soundfont()


@pytest.mark.skipif(not DEBIAN.exists(), reason="Debian's FluidR3_GM is not installed to compare with")
def test_the_kit_and_the_wav_export_sound_as_with_debians_fluidr3():
    ours, full = audio.DrumSynth(OURS), audio.DrumSynth(DEBIAN)
    for row_a, row_b in zip(drumkit.render_kit_samples(ours), drumkit.render_kit_samples(full), strict=True):
        for a, b in zip(row_a, row_b, strict=True):
            assert len(a) == len(b) and np.max(np.abs(a - b)) < 1e-3
    hits = np.zeros((64, 9), dtype=bool)
    hits[::4, 0] = hits[4::8, 1] = hits[::2, 2] = hits[14::16, 7] = hits[::16, 5] = True
    wav_a, rate = audio.decode_wav(audio.render_pattern(DrumPattern(hits), 110, synth=ours))
    wav_b, _ = audio.decode_wav(audio.render_pattern(DrumPattern(hits), 110, synth=full))
    assert len(wav_a) == len(wav_b) and audio.rms(wav_a) > 0.01
    assert audio.rms(wav_a - wav_b) < 0.01 * audio.rms(wav_b)
