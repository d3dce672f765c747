"""``musicvae prepare``: a folder of MIDI files -> compact 4-bar token windows per split.

Output folder layout (no pickles anywhere):
- ``{split}.npz``: ``tokens`` uint16 [N, steps], ``file_index`` int32 [N], ``start_bar`` int32 [N];
- ``manifest.json``: the files of each split (``file_index`` points into them), the settings,
  per-split counts, a fingerprint, and the rejected files with their reasons.

Corpora far larger than GMD use the sharded form instead (``prepare(..., shard_windows=N)``, see
``musicvae.shards``); ``load_split``, ``read_windows`` and ``fingerprint`` read either form.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from musicvae.fileio import atomic_open, atomic_write_text
from musicvae.midi.parse import InputError, file_windows
from musicvae.pattern import STEPS_PER_BAR

SPLITS = ("train", "validation", "test")


def default_gmd_dir() -> Path:
    """The Groove MIDI Dataset: $GMD_DIR, else ``shared/data/groove`` beside the repository, else /work/shared."""
    repo = Path(__file__).resolve().parent.parent
    candidates = [Path(os.environ["GMD_DIR"])] if os.environ.get("GMD_DIR") else []
    candidates += [repo.parent / "shared" / "data" / "groove", Path("/work/shared/data/groove")]
    return next((c for c in candidates if (c / "info.csv").exists()), candidates[0])
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


def _windows_of_file(job: tuple[str, str, PrepareSettings]) -> tuple[str, list[tuple[int, bytes]], str]:
    """Worker: (path, [(start_bar, tokens bytes)], rejection reason or '')."""
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
    return rel, [(bar, w.to_tokens().astype(np.uint16).tobytes()) for bar, w in windows], ""


def prepare(
    examples_path: Path,
    output_dir: Path,
    settings: PrepareSettings = PrepareSettings(),
    num_workers: int | None = None,
    progress: bool = True,
    shard_windows: int = 0,
    validation_fraction: float = 0.0,
    test_fraction: float = 0.0,
) -> dict[str, int]:
    """Prepare a corpus; ``shard_windows > 0`` writes the sharded, resumable form (``musicvae.shards``)."""
    if shard_windows:
        from musicvae.shards import prepare_sharded

        return prepare_sharded(examples_path, output_dir, settings, num_workers, progress, shard_windows,
                               validation_fraction, test_fraction)
    from tqdm import tqdm

    examples = list_examples(examples_path, validation_fraction, test_fraction)
    if not examples:
        raise InputError(f"No MIDI files found under {examples_path}.")
    steps = settings.slice_bars * STEPS_PER_BAR
    jobs = [(str(examples_path / rel), rel, settings) for rel, _ in examples]
    split_of = dict(examples)
    collected: dict[str, dict[str, list]] = {s: {"tokens": [], "file_index": [], "start_bar": []} for s in SPLITS}
    files: dict[str, list[str]] = {s: [] for s in SPLITS}
    rejected: dict[str, str] = {}
    workers = num_workers or os.cpu_count() or 1
    with ProcessPoolExecutor(workers) as pool:
        results = pool.map(_windows_of_file, jobs, chunksize=8)
        for rel, windows, reason in tqdm(results, total=len(jobs), desc="prepare", disable=not progress):
            if reason:
                rejected[rel] = reason
                continue
            split = split_of[rel]
            index = len(files[split])
            files[split].append(rel)
            for bar, token_bytes in windows:
                collected[split]["tokens"].append(np.frombuffer(token_bytes, dtype=np.uint16))
                collected[split]["file_index"].append(index)
                collected[split]["start_bar"].append(bar)
    output_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    digest = hashlib.sha256()
    for split in SPLITS:
        arrays = collected[split]
        tokens = np.stack(arrays["tokens"]) if arrays["tokens"] else np.zeros((0, steps), np.uint16)
        digest.update(tokens.tobytes())
        _savez(
            output_dir / f"{split}.npz",
            tokens=tokens,
            file_index=np.asarray(arrays["file_index"], dtype=np.int32),
            start_bar=np.asarray(arrays["start_bar"], dtype=np.int32),
        )
        counts[split] = int(tokens.shape[0])
    manifest = {
        "examples_path": str(examples_path),
        "settings": asdict(settings),
        "counts": counts,
        "fingerprint": digest.hexdigest()[:16],
        "files": files,
        "rejected": rejected,
    }
    atomic_write_text(output_dir / "manifest.json", json.dumps(manifest, indent=1))
    return counts


@dataclass
class Split:
    tokens: np.ndarray  # uint16 [N, steps]
    file_index: np.ndarray
    start_bar: np.ndarray
    files: list[str]

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    def describe(self, i: int) -> str:
        bar = int(self.start_bar[i])
        return f"{self.files[self.file_index[i]]} bars {bar + 1}-{bar + self.tokens.shape[1] // STEPS_PER_BAR}"


def is_sharded(data_dir: Path) -> bool:
    from musicvae.shards import FORMAT

    path = Path(data_dir) / "manifest.json"
    return path.exists() and json.loads(path.read_text()).get("format") == FORMAT


def load_split(data_dir: Path, split: str) -> Split:
    """A whole split in memory (a sharded split is concatenated: fine for evaluation, not for training)."""
    if is_sharded(data_dir):
        from musicvae.shards import ShardedSplit

        return ShardedSplit(data_dir, split).to_split()
    path = Path(data_dir) / f"{split}.npz"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `musicvae prepare --output_dir {data_dir}` first")
    manifest = json.loads((Path(data_dir) / "manifest.json").read_text())
    with np.load(path, allow_pickle=False) as arrays:
        return Split(arrays["tokens"], arrays["file_index"], arrays["start_bar"], manifest["files"][split])


def read_windows(data_dir: Path, split: str, limit: int) -> np.ndarray:
    """The first ``limit`` token windows of a split, reading no more shards than needed."""
    if is_sharded(data_dir):
        from musicvae.shards import ShardedSplit

        return ShardedSplit(data_dir, split).head(limit)
    return load_split(data_dir, split).tokens[:limit]


def fingerprint(data_dir: Path) -> str:
    return json.loads((Path(data_dir) / "manifest.json").read_text())["fingerprint"]


def _savez(path: Path, **arrays: np.ndarray) -> None:
    with atomic_open(path, "wb") as handle:
        np.savez_compressed(handle, **arrays)
