"""Where a corpus comes from: its MIDI files, their splits, and the windows of one file.

Shared by both forms of ``musicvae prepare`` (``prepare.py``, one file per split, and ``shards.py``,
resumable shards for corpora far larger than GMD).
"""

from __future__ import annotations

import csv
import hashlib
import os
import random
from dataclasses import dataclass
from pathlib import Path

from musicvae.data.storage import SPLITS
from musicvae.midi.parse import InputError, file_windows
from musicvae.pattern import DrumPattern


def default_gmd_dir() -> Path:
    """The Groove MIDI Dataset: ``$GMD_DIR`` when set, else the repository's own copy, ``data/groove/``."""
    if os.environ.get("GMD_DIR"):
        return Path(os.environ["GMD_DIR"])
    return Path(__file__).resolve().parents[2] / "data" / "groove"


MIDI_SUFFIXES = (".mid", ".midi", ".rmi", ".kar", ".smf")


@dataclass(frozen=True)
class PrepareSettings:
    slice_bars: int = 4
    gap_bars: int = 1
    max_bars: int = 100
    max_windows_per_file: int = 0  # 0 = no cap (Magenta caps at 5, dropping ~90% of GMD)
    seed: int = 0


def split_for_path(rel: str, validation_fraction: float = 0.0, test_fraction: float = 0.0) -> str:
    """A file's split from a hash of its relative path: stable when files are added or removed."""
    if validation_fraction < 0 or test_fraction < 0 or validation_fraction + test_fraction >= 1:
        raise ValueError("--validation_fraction and --test_fraction must be >= 0 and add up to less than 1")
    if not validation_fraction and not test_fraction:
        return "train"
    digest = hashlib.sha256(rel.replace(os.sep, "/").encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2.0**64
    if u < test_fraction:
        return "test"
    return "validation" if u < test_fraction + validation_fraction else "train"


def list_examples(
    examples_path: Path, validation_fraction: float = 0.0, test_fraction: float = 0.0
) -> list[tuple[str, str]]:
    """(relative path, split) for every MIDI file; GMD's info.csv gives the split if present.

    Folders without such a column put each file in a split by hash of its relative path
    (:func:`split_for_path`); with both fractions 0 (the default) every file goes to train.
    """
    info = examples_path / "info.csv"
    if info.exists():
        with info.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        if rows and "split" in rows[0] and "midi_filename" in rows[0]:
            return [(r["midi_filename"], r["split"]) for r in rows if r["split"] in SPLITS]
    files = sorted(_midi_files(examples_path))
    return [(f, split_for_path(f, validation_fraction, test_fraction)) for f in files]


def _midi_files(root: Path):
    """Relative POSIX paths of the MIDI files under ``root`` (plain strings: no Path per file)."""
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        prefix = os.path.relpath(folder, root).replace(os.sep, "/")
        for name in names:
            if os.path.splitext(name)[1].lower() in MIDI_SUFFIXES and os.path.isfile(os.path.join(folder, name)):
                yield name if prefix == "." else f"{prefix}/{name}"


def windows_of_file(job: tuple[str, str, PrepareSettings]) -> tuple[str, list[tuple[int, DrumPattern]], str]:
    """Worker: (path, [(start_bar, window with its velocities, offsets and qpm)], rejection reason or '')."""
    path, rel, settings = job
    try:
        data = Path(path).read_bytes()
        windows = file_windows(data, settings.slice_bars, settings.gap_bars, settings.max_bars)
    except InputError as error:
        return rel, [], str(error)
    except OSError as error:
        return rel, [], f"cannot read the file ({error.strerror})."
    if not windows:
        return rel, [], "no 4/4 drum passage long enough for one window."
    if settings.max_windows_per_file and len(windows) > settings.max_windows_per_file:
        rng = random.Random(f"{settings.seed}:{rel}")
        windows = sorted(rng.sample(windows, settings.max_windows_per_file), key=lambda w: w[0])
    return rel, windows, ""
