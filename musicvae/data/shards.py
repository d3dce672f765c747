"""Sharded corpora for datasets far larger than GMD (E-GMD, Lakh drum tracks, your own library).

``musicvae prepare --shard_windows N`` writes::

    OUTPUT/shards/{split}-00000.npz   tokens uint16 [n <= N, steps], file_index int32 [n],
                                      start_bar int32 [n], files str [k] (file_index points here)
    OUTPUT/rejected.jsonl             one line per file that gave no window: {"index", "file", "split", "reason"}
    OUTPUT/manifest.json              "format": "sharded-v1", the shard list per split, counts, fingerprint
    OUTPUT/shards/progress.json       the journal while running (gone once manifest.json exists)

How it scales:
- files are read by worker processes, at most a few batches in flight, and results come back in a
  fixed order (files sorted by a hash of their relative path, which also mixes the shards);
- the coordinator holds at most ``N`` windows per split: a full shard is written (temporary file,
  fsync, rename) and forgotten, so memory stays flat in corpus size (the file list, ~100 bytes a
  file, is the only thing that grows);
- after each shard the journal records, per split, the first window not yet on disk; a re-run
  (after Ctrl-C, kill -9, a reboot) keeps every finished shard and restarts from there, and gives
  byte-identical shards to an uninterrupted run.

Reading them back (``ShardedSplit``, and ``ShardStream`` for training, so that a corpus bigger than
RAM works) is ``musicvae.data.storage``'s job.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np

from musicvae.data.sources import PrepareSettings, list_examples, windows_of_file
from musicvae.data.storage import FORMAT, SHARD_DIR, SPLITS
from musicvae.fileio import atomic_open, atomic_write_text
from musicvae.midi.parse import InputError
from musicvae.pattern import STEPS_PER_BAR

JOURNAL = "progress.json"
REJECTED_LOG = "rejected.jsonl"
FILES_PER_TASK = 16


def _order_key(rel: str) -> bytes:
    return hashlib.sha256(b"order\0" + rel.encode()).digest()[:8]


def _process(task: tuple[PrepareSettings, list[tuple[int, str, str]]]) -> list[tuple[int, list, str]]:
    """Worker: [(index, [(start_bar, token bytes)], reason)] for a few files."""
    settings, files = task
    out = []
    for index, path, rel in files:
        try:
            _, windows, reason = windows_of_file((path, rel, settings))
        except Exception as error:  # a reader bug on one odd file must not stop a 170k-file run
            windows, reason = [], f"the MIDI reader failed on this file ({type(error).__name__}: {error})."
        # the sharded form keeps tokens only: send bytes back, not patterns (the coordinator stays small)
        out.append((index, [(bar, w.to_tokens().astype(np.uint16).tobytes()) for bar, w in windows], reason))
    return out


def _worker_init() -> None:
    """Workers parse; they inherit no memory tracing (the tests trace the coordinator only)."""
    import tracemalloc

    tracemalloc.stop()


def _in_order(pool: ProcessPoolExecutor, tasks: Iterable, in_flight: int) -> Iterator[list]:
    """pool.map that keeps only ``in_flight`` tasks submitted (Executor.map submits them all)."""
    pending: deque[Future] = deque()
    tasks = iter(tasks)
    for task in tasks:
        pending.append(pool.submit(_process, task))
        if len(pending) >= in_flight:
            break
    while pending:
        result = pending.popleft().result()
        task = next(tasks, None)
        if task is not None:
            pending.append(pool.submit(_process, task))
        yield result


class _ShardWriter:
    """The coordinator: per-split buffers, shard files, the journal and the rejection log."""

    def __init__(self, output_dir: Path, params: dict, steps: int) -> None:
        self.root = output_dir / SHARD_DIR
        self.output_dir = output_dir
        self.params = params
        self.size = params["shard_windows"]
        self.steps = steps
        self.buffers: dict[str, list[tuple[int, int, int, bytes, str]]] = {s: [] for s in SPLITS}
        self.shards: dict[str, list[dict]] = {s: [] for s in SPLITS}
        self.resume: dict[str, tuple[int, int]] = {s: (0, 0) for s in SPLITS}
        self.cursor = 0  # files consumed, in processing order
        self.peak_buffered = 0
        self.log = None  # the rejection log, opened by open()

    def open(self) -> int:
        """Load the journal if there is one; returns the first file index to (re)process."""
        self.root.mkdir(parents=True, exist_ok=True)
        for leftover in self.root.glob("*.tmp"):
            leftover.unlink()
        journal = self.root / JOURNAL
        start = 0
        if journal.exists():
            saved = json.loads(journal.read_text())
            if saved["params"] != self.params:
                raise InputError(f"{self.output_dir} holds an unfinished preparation of other files or settings: "
                                 "use a new --output_dir (or delete that one)")
            self.shards = saved["shards"]
            self.resume = {s: tuple(saved["resume"][s]) for s in SPLITS}
            start = min(index for index, _ in self.resume.values())
        self.cursor = start
        self._trim_log(start)
        self.log = open(self.output_dir / REJECTED_LOG, "a")
        return start

    def _trim_log(self, start: int) -> None:
        """Keep the log lines of files before ``start`` (those after it are about to be redone)."""
        path = self.output_dir / REJECTED_LOG
        if not path.exists():
            return
        with open(path) as old, atomic_open(path, "w") as new:
            for line in old:
                try:
                    keep = json.loads(line)["index"] < start
                except (ValueError, KeyError):  # a line cut short by a crash
                    keep = False
                if keep:
                    new.write(line)

    def add(self, index: int, rel: str, split: str, windows: list, reason: str) -> None:
        if reason:
            self.log.write(json.dumps({"index": index, "file": rel, "split": split, "reason": reason}) + "\n")
            self.log.flush()
        else:
            first = self.resume[split]
            buffer = self.buffers[split]
            for offset, (bar, token_bytes) in enumerate(windows):
                if (index, offset) >= first:  # windows before it are in a finished shard already
                    buffer.append((index, offset, bar, token_bytes, rel))
        self.cursor = index + 1
        self.peak_buffered = max(self.peak_buffered, sum(len(b) for b in self.buffers.values()))
        if any(len(b) >= self.size for b in self.buffers.values()):
            self.flush(final=False)

    def flush(self, final: bool) -> None:
        for split in SPLITS:
            while len(self.buffers[split]) >= self.size or (final and self.buffers[split]):
                chunk = self.buffers[split][: self.size]
                self.buffers[split] = self.buffers[split][self.size :]
                self._write_shard(split, chunk)
        self._write_journal()

    def _write_shard(self, split: str, chunk: list[tuple[int, int, int, bytes, str]]) -> None:
        names: dict[str, int] = {}
        file_index = np.array([names.setdefault(rel, len(names)) for *_, rel in chunk], dtype=np.int32)
        tokens = np.frombuffer(b"".join(item[3] for item in chunk), dtype=np.uint16).reshape(len(chunk), self.steps)
        name = f"{split}-{len(self.shards[split]):05d}.npz"
        with atomic_open(self.root / name, "wb") as handle:
            np.savez_compressed(handle, tokens=tokens, file_index=file_index,
                                start_bar=np.array([item[2] for item in chunk], dtype=np.int32),
                                files=np.array(list(names), dtype=str))
        digest = hashlib.sha256(tokens.tobytes()).hexdigest()[:16]
        self.shards[split].append({"name": name, "windows": len(chunk), "sha256": digest})

    def _write_journal(self) -> None:
        for split in SPLITS:
            buffer = self.buffers[split]
            self.resume[split] = (buffer[0][0], buffer[0][1]) if buffer else (self.cursor, 0)
        self.log.flush()
        os.fsync(self.log.fileno())  # the journal never gets ahead of the log
        state = {"params": self.params, "shards": self.shards, "resume": self.resume, "cursor": self.cursor}
        atomic_write_text(self.root / JOURNAL, json.dumps(state))

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
            self.log = None


def prepare_sharded(
    examples_path: Path,
    output_dir: Path,
    settings: PrepareSettings = PrepareSettings(),
    num_workers: int | None = None,
    progress: bool = True,
    shard_windows: int = 50_000,
    validation_fraction: float = 0.0,
    test_fraction: float = 0.0,
) -> dict[str, int]:
    """Sharded, resumable, flat-memory ``prepare``; returns the windows per split."""
    from tqdm import tqdm

    if shard_windows < 1:
        raise ValueError("--shard_windows must be a positive number of windows")
    examples_path, output_dir = Path(examples_path), Path(output_dir)
    examples = list_examples(examples_path, validation_fraction, test_fraction)
    if not examples:
        raise InputError(f"No MIDI files found under {examples_path}.")
    examples.sort(key=lambda item: (_order_key(item[0]), item[0]))
    listing = hashlib.sha256("".join(f"{rel}\t{split}\n" for rel, split in examples).encode()).hexdigest()[:16]
    params = {"format": FORMAT, "settings": asdict(settings), "shard_windows": shard_windows,
              "validation_fraction": validation_fraction, "test_fraction": test_fraction,
              "num_files": len(examples), "listing": listing}
    manifest_path = output_dir / "manifest.json"
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("params") == params:  # finished earlier: every shard is there
            (output_dir / SHARD_DIR / JOURNAL).unlink(missing_ok=True)
            print(f"{output_dir} is already prepared: nothing to do", flush=True)
            return manifest["counts"]
        raise InputError(f"{output_dir} already holds a prepared corpus of other files or settings: "
                         "use a new --output_dir")
    writer = _ShardWriter(output_dir, params, settings.slice_bars * STEPS_PER_BAR)
    bar = None
    try:  # the rejection log opened by writer.open() is closed whatever happens from here on
        start = writer.open()
        if start:
            done = sum(len(v) for v in writer.shards.values())
            print(f"resuming {output_dir}: {start} of {len(examples)} files done, {done} finished shards kept",
                  flush=True)
        workers = num_workers or os.cpu_count() or 1
        base = str(examples_path)
        tasks = (  # plain strings: pathlib would intern every file name for the life of the process
            (settings, [(i, os.path.join(base, examples[i][0]), examples[i][0])
                        for i in range(lo, min(lo + FILES_PER_TASK, len(examples)))])
            for lo in range(start, len(examples), FILES_PER_TASK)
        )
        bar = tqdm(total=len(examples), initial=start, desc="prepare", unit="file", smoothing=0.05,
                   disable=not progress)
        rejected = 0
        with ProcessPoolExecutor(workers, initializer=_worker_init) as pool:
            for results in _in_order(pool, tasks, in_flight=4 * workers):
                for index, windows, reason in results:
                    rel, split = examples[index]
                    writer.add(index, rel, split, windows, reason)
                    rejected += bool(reason)
                bar.update(len(results))
                bar.set_postfix(shards=sum(len(v) for v in writer.shards.values()), rejected=rejected,
                                refresh=False)
        writer.flush(final=True)
    finally:
        if bar is not None:
            bar.close()
        writer.close()
    return _finish(output_dir, examples_path, examples, writer, params, settings)


def _finish(output_dir: Path, examples_path: Path, examples: list, writer: _ShardWriter, params: dict,
            settings: PrepareSettings) -> dict[str, int]:
    counts = {s: sum(e["windows"] for e in writer.shards[s]) for s in SPLITS}
    files_used = {s: 0 for s in SPLITS}
    for _, split in examples:
        files_used[split] += 1
    rejected = 0
    with open(output_dir / REJECTED_LOG) as handle:
        for line in handle:
            files_used[json.loads(line)["split"]] -= 1
            rejected += 1
    digest = hashlib.sha256()
    for split in SPLITS:
        for entry in writer.shards[split]:
            digest.update(f"{split}:{entry['sha256']}:{entry['windows']};".encode())
    manifest = {
        "format": FORMAT,
        "examples_path": str(examples_path),
        "settings": asdict(settings),
        "params": params,
        "steps": writer.steps,
        "counts": counts,
        "fingerprint": digest.hexdigest()[:16],
        "files_used": files_used,
        "rejected_count": rejected,
        "rejected_log": REJECTED_LOG,
        "peak_buffered_windows": writer.peak_buffered,
        "shards": writer.shards,
    }
    atomic_write_text(output_dir / "manifest.json", json.dumps(manifest, indent=1))
    (output_dir / SHARD_DIR / JOURNAL).unlink(missing_ok=True)
    return counts
