"""The drum representation: Magenta's worked examples, round trips, MIDI output."""

from __future__ import annotations

import io

import numpy as np
import pretty_midi
import pytest
from hypothesis import given, settings
from hypothesis.extra.numpy import arrays

from musicvae.pattern import (
    EXEMPLAR_PITCHES,
    PITCH_TO_CLASS,
    DrumPattern,
    hits_from_tokens,
    roll_from_tokens,
    tokens_from_hits,
)

KICK, SNARE, CLOSED_HH, MID_TOM, CRASH, RIDE = 0, 1, 2, 5, 7, 8


def _hits(*classes: int) -> np.ndarray:
    row = np.zeros((1, 9), dtype=bool)
    row[0, list(classes)] = True
    return row


@pytest.mark.parametrize(
    "classes, token",
    [((KICK,), 1), ((KICK, CLOSED_HH), 5), ((SNARE,), 2), ((MID_TOM, CRASH), 160), ((RIDE,), 256), ((), 0)],
)
def test_magenta_worked_examples(classes, token):
    assert tokens_from_hits(_hits(*classes))[0] == token
    assert (hits_from_tokens(np.array([token]))[0] == _hits(*classes)[0]).all()


def test_roll_has_nothing_played_flag_last():
    roll = roll_from_tokens(np.array([0, 1, 160]))
    assert roll.shape == (3, 10)
    assert roll[0].tolist() == [0] * 9 + [1]
    assert roll[1].tolist() == [1] + [0] * 9
    assert roll[2, [5, 7]].tolist() == [1, 1] and roll[2, 9] == 0


def test_pitch_map_current_version():
    assert PITCH_TO_CLASS[43] == 4  # low tom since the 2019 fix
    assert PITCH_TO_CLASS[52] == 7  # crash since the 2019 fix
    assert PITCH_TO_CLASS[22] == 2 and PITCH_TO_CLASS[26] == 3
    assert EXEMPLAR_PITCHES == (36, 38, 42, 46, 45, 48, 50, 49, 51)
    assert len(PITCH_TO_CLASS) == 63


@settings(max_examples=50, deadline=None)
@given(arrays(bool, (64, 9)))
def test_tokens_round_trip(hits):
    assert (hits_from_tokens(tokens_from_hits(hits)) == hits).all()


def test_midi_round_trip_keeps_hits_and_tempo():
    rng = np.random.default_rng(0)
    pattern = DrumPattern(rng.random((64, 9)) < 0.2, qpm=97.0)
    midi = pretty_midi.PrettyMIDI(io.BytesIO(pattern.to_midi_bytes()))
    assert len(midi.instruments) == 1 and midi.instruments[0].is_drum
    assert midi.get_tempo_changes()[1][0] == pytest.approx(97.0, rel=1e-3)
    step = 60.0 / 97.0 / 4
    rebuilt = np.zeros((64, 9), dtype=bool)
    for note in midi.instruments[0].notes:
        assert note.start >= 0
        rebuilt[round(note.start / step), PITCH_TO_CLASS[note.pitch]] = True
    assert (rebuilt == pattern.hits).all()


def test_midi_round_trip_through_loader():
    from musicvae.midi.parse import file_windows

    rng = np.random.default_rng(1)
    hits = rng.random((64, 9)) < 0.25
    hits[::16, 0] = True  # a hit in every bar, so the gap rule keeps all four bars
    pattern = DrumPattern(hits, qpm=133.0)
    windows = file_windows(pattern.to_midi_bytes())
    assert len(windows) == 1 and windows[0][1].same_hits(pattern)


def test_bad_shapes_rejected():
    with pytest.raises(ValueError):
        DrumPattern(np.zeros((64, 8), dtype=bool))
