"""``musicvae prepare`` for big corpora, on a generated tree of ~2,000 small MIDI files (some broken):
shards, the rejection log, stable splits, flat memory, resuming after kill -9, streaming to training."""

from __future__ import annotations

import json
import os
import random
import signal
import struct
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from test_loader import vlq  # the SMF byte builders live with the loader tests

from musicvae.data.prepare import prepare
from musicvae.data.shards import JOURNAL, REJECTED_LOG
from musicvae.data.sources import PrepareSettings, split_for_path
from musicvae.data.storage import SHARD_DIR, ShardedSplit, ShardStream, load_split

NUM_FILES = 2000
SHARD = 500
FRACTIONS = {"validation_fraction": 0.1, "test_fraction": 0.1}




def groove(seed: int, bars: int, numerator: int = 4) -> bytes:
    """A one-track MIDI file (96 ppq): a kick on every downbeat, random snare/hats on 16ths."""
    rng = random.Random(seed)
    events = [(0, b"\xff\x58\x04" + bytes([numerator, 2, 24, 8])), (0, b"\xff\x51\x03\x07\xa1\x20")]
    steps_per_bar = 4 * numerator
    for step in range(bars * steps_per_bar):
        pitches = [36] if step % steps_per_bar == 0 else []
        pitches += [p for p in (38, 42, 46) if rng.random() < 0.3]
        for pitch in pitches:
            events += [(step * 24, bytes([0x99, pitch, 100])), (step * 24 + 6, bytes([0x89, pitch, 0]))]
    events.sort(key=lambda event: event[0])
    track, now = bytearray(), 0
    for tick, data in events:
        track += vlq(tick - now) + data
        now = tick
    track += b"\x00\xff\x2f\x00"
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, 96) + b"MTrk" + struct.pack(">I", len(track)) + bytes(track)


BROKEN = {
    "empty": lambda i: b"",
    "text": lambda i: b"this is not a midi file\n",
    "truncated": lambda i: groove(i, 6)[:40],
    "three_four": lambda i: groove(i, 8, numerator=3),
    "one_bar": lambda i: groove(i, 1),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict[str, int], dict[str, str]]:
    """(root, {good file: windows}, {broken file: kind}); every 50th file is broken."""
    root = tmp_path_factory.mktemp("corpus")
    good, broken = {}, {}
    for i in range(NUM_FILES):
        rel = f"lib{i % 7}/set{i % 23:02d}/groove_{i:05d}.mid"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        if i % 50 == 49:
            kind = list(BROKEN)[(i // 50) % len(BROKEN)]
            (root / rel).write_bytes(BROKEN[kind](i))
            broken[rel] = kind
        else:
            bars = 4 + i % 6  # 4..9 bars: 1..6 distinct one-bar-hop windows
            (root / rel).write_bytes(groove(i, bars))
            good[rel] = bars - 3
    return root, good, broken


def _prepare_traced(examples: Path, output: Path) -> tuple[dict[str, int], int]:
    tracemalloc.start()
    try:
        counts = prepare(examples, output, PrepareSettings(), num_workers=2, progress=False, shard_windows=SHARD,
                         **FRACTIONS)
        return counts, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def prepared(corpus, tmp_path_factory) -> tuple[Path, dict[str, int], int]:
    warm = tmp_path_factory.mktemp("warm")  # a first small run imports what prepare needs, before tracing
    for rel in sorted(corpus[1])[:3]:
        os.link(corpus[0] / rel, warm / Path(rel).name)
    prepare(warm, warm / "out", PrepareSettings(), 2, False, shard_windows=2, **FRACTIONS)
    out = tmp_path_factory.mktemp("prepared")
    counts, peak = _prepare_traced(corpus[0], out)
    return out, counts, peak


def _files_by_split(output: Path) -> dict[str, str]:
    manifest = json.loads((output / "manifest.json").read_text())
    found = {}
    for split, entries in manifest["shards"].items():
        for entry in entries:
            with np.load(output / SHARD_DIR / entry["name"]) as arrays:
                found.update((str(f), split) for f in arrays["files"])
    return found


def test_shards_windows_and_rejection_log(corpus, prepared):
    _, good, broken = corpus
    output, counts, _ = prepared
    manifest = json.loads((output / "manifest.json").read_text())
    assert sum(counts.values()) == sum(good.values())
    for split, entries in manifest["shards"].items():
        sizes = [e["windows"] for e in entries]
        assert len(sizes) == -(-counts[split] // SHARD)  # ceil: full shards, then one partial
        assert all(size == SHARD for size in sizes[:-1]) and 0 < sizes[-1] <= SHARD
        assert [e["name"] for e in entries] == [f"{split}-{k:05d}.npz" for k in range(len(entries))]
        for entry in entries:
            with np.load(output / SHARD_DIR / entry["name"], allow_pickle=False) as arrays:
                assert arrays["tokens"].shape == (entry["windows"], 64) and arrays["tokens"].dtype == np.uint16
                assert int(arrays["file_index"].max()) < len(arrays["files"])
    assert sorted(os.listdir(output / SHARD_DIR)) == sorted(e["name"] for v in manifest["shards"].values() for e in v)
    lines = [json.loads(line) for line in (output / REJECTED_LOG).read_text().splitlines()]
    assert {line["file"]: line["split"] for line in lines} == {rel: split_for_path(rel, **FRACTIONS) for rel in broken}
    reasons = {broken[line["file"]]: line["reason"] for line in lines}
    assert reasons["empty"] == "The file is empty."
    assert all(reasons[kind] for kind in BROKEN)  # a reason for every kind
    assert manifest["rejected_count"] == len(broken) == 40
    assert sum(manifest["files_used"].values()) == len(good)
    # every window of every good file, in the split its path hashes to
    whole = load_split(output, "train")
    assert len(whole) == counts["train"] and len({row.tobytes() for row in whole.tokens}) == counts["train"]
    assert _files_by_split(output) == {rel: split_for_path(rel, **FRACTIONS) for rel in good}


def test_a_finished_output_is_not_redone(corpus, prepared, capsys):
    output, counts, _ = prepared
    before = {p.name: p.stat().st_mtime_ns for p in (output / SHARD_DIR).iterdir()}
    assert prepare(corpus[0], output, PrepareSettings(), 1, False, shard_windows=SHARD, **FRACTIONS) == counts
    assert "already prepared" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in (output / SHARD_DIR).iterdir()} == before
    with pytest.raises(ValueError, match="other files or settings"):
        prepare(corpus[0], output, PrepareSettings(), 1, False, shard_windows=SHARD + 1, **FRACTIONS)


def test_splits_are_stable_and_memory_is_flat(corpus, prepared, tmp_path):
    root, good, _ = corpus
    output, counts, peak = prepared
    shares = {s: n / len(good) for s, n in json.loads((output / "manifest.json").read_text())["files_used"].items()}
    assert 0.07 < shares["validation"] < 0.13 and 0.07 < shares["test"] < 0.13
    subset = tmp_path / "subset"  # 300 of the files, same relative paths, another folder
    for rel in sorted(good)[:300]:
        (subset / rel).parent.mkdir(parents=True, exist_ok=True)
        os.link(root / rel, subset / rel)
    _, small_peak = _prepare_traced(subset, tmp_path / "out")
    full = _files_by_split(output)
    assert all(full[rel] == split for rel, split in _files_by_split(tmp_path / "out").items())
    # The coordinator holds at most a shard per split; holding the corpus would take ~6,800 windows
    # (~2 MB of Python objects) more for the full tree.  What grows is the file list (~250 B a file).
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["peak_buffered_windows"] <= 3 * SHARD + 6
    assert peak - small_peak < 1_200_000, (peak, small_peak)


def test_kill_9_then_rerun_keeps_finished_shards_and_gives_the_same_corpus(corpus, prepared, tmp_path):
    output, counts, _ = prepared
    partial = tmp_path / "partial"
    cmd = [sys.executable, "-m", "musicvae.cli", "prepare", "--examples_path", str(corpus[0]), "--output_dir",
           str(partial), "--shard_windows", str(SHARD), "--validation_fraction", "0.1", "--test_fraction", "0.1",
           "--num_workers", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    journal = partial / SHARD_DIR / JOURNAL
    deadline = time.monotonic() + 120
    finished: list = []
    while time.monotonic() < deadline and len(finished) < 3:
        time.sleep(0.02)
        try:
            finished = [e["name"] for v in json.loads(journal.read_text())["shards"].values() for e in v]
        except (OSError, ValueError):
            continue
    os.killpg(proc.pid, signal.SIGKILL)  # the coordinator and its worker, mid-run
    proc.wait()
    assert len(finished) >= 3 and not (partial / "manifest.json").exists()
    kept = {name: (partial / SHARD_DIR / name).stat() for name in finished}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "finished shards kept" in result.stdout
    assert result.stdout.splitlines()[-1] == (
        f"windows: train={counts['train']} validation={counts['validation']} test={counts['test']}")
    for name, stat in kept.items():  # finished shards were not written again
        now = (partial / SHARD_DIR / name).stat()
        assert (now.st_ino, now.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns), name
    straight, resumed = (json.loads((d / "manifest.json").read_text()) for d in (output, partial))
    assert resumed["shards"] == straight["shards"] and resumed["fingerprint"] == straight["fingerprint"]
    assert (partial / REJECTED_LOG).read_text() == (output / REJECTED_LOG).read_text()
    assert not journal.exists()


def test_stream_reader_thread_starts_on_first_read_and_stops_on_close(prepared):
    """A stream holds no executor until it is read (the training loop makes it before its try/finally), and
    close() (or leaving a ``with``) stops the read-ahead thread; reading after close still works."""
    output, _, _ = prepared
    split = ShardedSplit(output, "train")

    def readers() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name.startswith("musicvae-shards")]

    assert not readers()
    stream = ShardStream(split, global_batch=64, seed=3, shuffle_shards=1)
    assert stream._loader is None and not readers()  # made and dropped: nothing to leak
    first = stream.batch(0, 0)
    assert len(readers()) == 1  # the next shard group is being read ahead
    stream.close()
    assert not readers()
    assert np.array_equal(stream.batch(0, 0), first)
    stream.close()
    with ShardStream(split, 64, 3, 1) as again:
        assert np.array_equal(again.batch(0, 0), first) and readers()
    assert not readers()


def test_training_streams_the_shards(prepared, tmp_path):
    from musicvae.api import TrainedModel
    from musicvae.configs import get_config
    from musicvae.training import checkpoint as ckpt
    from musicvae.training.loop import train

    output, counts, _ = prepared
    split = ShardedSplit(output, "train")
    stream = ShardStream(split, global_batch=64, seed=3, shuffle_shards=4)
    seen = np.concatenate([stream.batch(0, b) for b in range(stream.num_batches(0))])
    assert len(stream._cache) <= 2  # never more than the current group and the next in memory
    stream.close()
    assert len(seen) == (counts["train"] // 64) * 64 and len({row.tobytes() for row in seen}) == len(seen)
    again = ShardStream(split, 64, 3, 4)
    assert np.array_equal(again.batch(0, 40, 16, 32), seen[40 * 64 + 16 : 40 * 64 + 32])  # random access
    assert not np.array_equal(again.batch(1, 0), seen[:64])  # a new order each epoch
    again.close()
    config = get_config("tiny-hier-drums_4bar")
    train(config, tmp_path / "straight", output, 6, progress=False, eval_every_steps=3, eval_examples=32)
    train(config, tmp_path / "resumed", output, 4, progress=False, eval_every_steps=3, eval_examples=32)
    train(config, tmp_path / "resumed", output, 6, progress=False, eval_every_steps=3, eval_examples=32)
    assert ckpt.read_meta(ckpt.latest_checkpoint(tmp_path / "resumed"))["data_fingerprint"] == json.loads(
        (output / "manifest.json").read_text())["fingerprint"]
    a = TrainedModel.load(tmp_path / "straight").model.state_dict()
    b = TrainedModel.load(tmp_path / "resumed").model.state_dict()
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
    assert len((tmp_path / "straight" / "curve.jsonl").read_text().splitlines()) == 2
