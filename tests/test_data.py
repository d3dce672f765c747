"""The data pipeline on real GMD files."""

from __future__ import annotations

import json

import mido
import numpy as np

from musicvae.data.prepare import prepare
from musicvae.data.sources import PrepareSettings
from musicvae.data.storage import load_split
from musicvae.midi.parse import file_windows, parse_midi

GROOVE_138 = "drummer1/eval_session/1_funk-groove1_138_beat_4-4.mid"  # 27.87 s at 138 bpm = 16 bars
TEMPO_CHANGE = "drummer10/session1/9_jazz-swing_110_beat_4-4.mid"


def test_continuous_groove_gives_every_one_bar_hop_window(gmd):
    data = (gmd / GROOVE_138).read_bytes()
    bars = round(27.872308 * 138 / 60 / 4)
    windows = file_windows(data)
    assert bars == 16
    assert len(windows) == bars - 4 + 1  # played without an empty bar: one window per bar hop
    assert [bar for bar, _ in windows] == list(range(13))
    assert all(w.num_steps == 64 and w.num_hits > 0 for _, w in windows)


def test_fills_and_three_four_give_no_window(gmd):
    assert file_windows((gmd / "drummer1/session1/10_jazz-funk_116_fill_4-4.mid").read_bytes()) == []
    three_four = next(gmd.glob("drummer*/*/*_3-4.mid"))
    assert file_windows(three_four.read_bytes()) == []


def test_tempo_changes_do_not_move_the_grid(gmd, tmp_path):
    """Quantizing in ticks: deleting every tempo event must not change a single window."""
    data = (gmd / TEMPO_CHANGE).read_bytes()
    assert len(parse_midi(data).tempos) > 1
    midi = mido.MidiFile(file=__import__("io").BytesIO(data))
    for track in midi.tracks:
        kept, carry = [], 0
        for message in track:
            if message.type == "set_tempo":
                carry += message.time
                continue
            kept.append(message.copy(time=message.time + carry))
            carry = 0
        track[:] = kept
    stripped = tmp_path / "stripped.mid"
    midi.save(stripped)
    with_changes = [(bar, w.to_tokens().tolist()) for bar, w in file_windows(data)]
    without = [(bar, w.to_tokens().tolist()) for bar, w in file_windows(stripped.read_bytes())]
    assert with_changes and with_changes == without


def test_prepare_splits_provenance_and_cap(small_gmd, small_data, tmp_path):
    manifest = json.loads((small_data / "manifest.json").read_text())
    assert manifest["counts"]["test"] == 13
    assert manifest["counts"]["train"] > 0 and manifest["counts"]["validation"] > 0
    assert "drummer1/session1/10_jazz-funk_116_fill_4-4.mid" in manifest["rejected"]
    test = load_split(small_data, "test")
    assert test.tokens.shape == (13, 64) and test.tokens.dtype == np.uint16
    assert test.describe(0) == f"{GROOVE_138} bars 1-4"
    train = load_split(small_data, "train")
    assert len({row.tobytes() for row in train.tokens}) == len(train)  # de-duplicated per file
    capped = prepare(small_gmd, tmp_path / "capped", PrepareSettings(max_windows_per_file=5), 1, False)
    assert capped["test"] == 5 and capped["train"] <= 5


def test_prepare_plain_folder_goes_to_train(gmd, tmp_path):
    folder = tmp_path / "plain"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.MID").write_bytes((gmd / GROOVE_138).read_bytes())
    counts = prepare(folder, tmp_path / "out", PrepareSettings(), 1, False)
    assert counts == {"train": 13, "validation": 0, "test": 0}
