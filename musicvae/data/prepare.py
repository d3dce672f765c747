"""``musicvae prepare``: a folder of MIDI files -> compact 4-bar token windows per split.

Output folder layout (no pickles anywhere; read back by ``musicvae.data.storage``):
- ``{split}.npz``: ``tokens`` uint16 [N, steps], ``file_index`` int32 [N], ``start_bar`` int32 [N], and
  how each window was played: ``velocities`` uint8 [N, steps, 9], ``offsets`` int8 [N, steps, 9] (in
  1/254 of a step, so +-127 is half a step; positive = late) and ``qpm`` float32 [N];
- ``manifest.json``: the files of each split (``file_index`` points into them), the settings,
  per-split counts, a fingerprint, and the rejected files with their reasons.

Corpora far larger than GMD use the sharded form instead (``prepare(..., shard_windows=N)``, see
``musicvae.data.shards``).
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np

from musicvae.data.shards import prepare_sharded
from musicvae.data.sources import PrepareSettings, list_examples, windows_of_file
from musicvae.data.storage import OFFSET_UNITS, SPLITS
from musicvae.fileio import atomic_open, atomic_write_text
from musicvae.midi.parse import InputError
from musicvae.pattern import NUM_CLASSES, STEPS_PER_BAR


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
    """Prepare a corpus; ``shard_windows > 0`` writes the sharded, resumable form (``musicvae.data.shards``)."""
    if shard_windows:
        return prepare_sharded(examples_path, output_dir, settings, num_workers, progress, shard_windows,
                               validation_fraction, test_fraction)
    from tqdm import tqdm

    examples = list_examples(examples_path, validation_fraction, test_fraction)
    if not examples:
        raise InputError(f"No MIDI files found under {examples_path}.")
    steps = settings.slice_bars * STEPS_PER_BAR
    jobs = [(str(examples_path / rel), rel, settings) for rel, _ in examples]
    split_of = dict(examples)
    fields = ("tokens", "file_index", "start_bar", "velocities", "offsets", "qpm")
    collected: dict[str, dict[str, list]] = {s: {f: [] for f in fields} for s in SPLITS}
    files: dict[str, list[str]] = {s: [] for s in SPLITS}
    rejected: dict[str, str] = {}
    workers = num_workers or os.cpu_count() or 1
    with ProcessPoolExecutor(workers) as pool:
        results = pool.map(windows_of_file, jobs, chunksize=8)
        for rel, windows, reason in tqdm(results, total=len(jobs), desc="prepare", disable=not progress):
            if reason:
                rejected[rel] = reason
                continue
            split = split_of[rel]
            index = len(files[split])
            files[split].append(rel)
            for bar, window in windows:
                arrays = collected[split]
                arrays["tokens"].append(window.to_tokens().astype(np.uint16))
                arrays["file_index"].append(index)
                arrays["start_bar"].append(bar)
                arrays["velocities"].append(window.velocity_grid())
                arrays["offsets"].append(np.rint(window.offset_grid() * OFFSET_UNITS).astype(np.int8))
                arrays["qpm"].append(window.qpm)
    output_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    digest = hashlib.sha256()
    for split in SPLITS:
        arrays = collected[split]
        tokens = np.stack(arrays["tokens"]) if arrays["tokens"] else np.zeros((0, steps), np.uint16)
        digest.update(tokens.tobytes())  # tokens only: the fingerprint of the categorical models' data stays
        empty = np.zeros((0, steps, NUM_CLASSES))
        _savez(
            output_dir / f"{split}.npz",
            tokens=tokens,
            file_index=np.asarray(arrays["file_index"], dtype=np.int32),
            start_bar=np.asarray(arrays["start_bar"], dtype=np.int32),
            velocities=np.stack(arrays["velocities"]).astype(np.uint8) if tokens.size else empty.astype(np.uint8),
            offsets=np.stack(arrays["offsets"]).astype(np.int8) if tokens.size else empty.astype(np.int8),
            qpm=np.asarray(arrays["qpm"], dtype=np.float32),
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



def _savez(path: Path, **arrays: np.ndarray) -> None:
    with atomic_open(path, "wb") as handle:
        np.savez_compressed(handle, **arrays)
