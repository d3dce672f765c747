"""Reading a prepared corpus, in either form: whole splits, the first windows, the fingerprint, and
training batches streamed from shards.

``musicvae prepare`` writes one of two forms into its output folder (no pickles anywhere):

- ``{split}.npz`` (``tokens`` uint16 [N, steps], ``file_index`` int32 [N], ``start_bar`` int32 [N]) and
  ``manifest.json`` (the files of each split, the settings, counts, a fingerprint, rejected files);
- the sharded form (``manifest.json`` with ``"format": "sharded-v1"`` and ``shards/{split}-NNNNN.npz``,
  written by ``musicvae.data.shards``) for corpora far larger than GMD.

``load_split``, ``read_windows`` and ``fingerprint`` read either form; :class:`ShardStream` streams
training batches from shards, so a corpus bigger than RAM works.
"""

from __future__ import annotations

import json
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicvae.pattern import DEFAULT_QPM, STEPS_PER_BAR, DrumPattern, groove_from_grids, hits_from_tokens

SPLITS = ("train", "validation", "test")
OFFSET_UNITS = 254  # stored offsets are int8 in 1/254 of a step: +-127 is half a step
FORMAT = "sharded-v1"
SHARD_DIR = "shards"


@dataclass
class Split:
    tokens: np.ndarray  # uint16 [N, steps]
    file_index: np.ndarray
    start_bar: np.ndarray
    files: list[str]
    # how each window was played (None for the sharded form and for folders prepared before groove models)
    velocities: np.ndarray | None = None  # uint8 [N, steps, 9]
    offsets: np.ndarray | None = None  # int8 [N, steps, 9], in 1/OFFSET_UNITS of a step
    qpm: np.ndarray | None = None  # float32 [N]

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def has_feel(self) -> bool:
        return self.velocities is not None and self.offsets is not None

    def groove_frames(self, rows=slice(None)) -> np.ndarray:
        """[n, steps, 27] float32 groove frames (``musicvae.pattern.groove_from_grids``) of the chosen windows."""
        if not self.has_feel:
            raise ValueError("this prepared folder has no velocities or offsets: re-run `musicvae prepare`")
        hits = hits_from_tokens(self.tokens[rows])
        return groove_from_grids(hits, self.velocities[rows], self.offsets[rows].astype(np.float32) / OFFSET_UNITS)

    def pattern(self, i: int) -> DrumPattern:
        """Window ``i`` as a pattern, with its velocities, offsets and tempo when the folder has them."""
        if not self.has_feel:
            return DrumPattern.from_tokens(self.tokens[i], source=self.describe(i))
        qpm = float(self.qpm[i]) if self.qpm is not None else DEFAULT_QPM
        return DrumPattern.from_groove(self.groove_frames(slice(i, i + 1))[0], qpm, self.describe(i))

    def describe(self, i: int) -> str:
        bar = int(self.start_bar[i])
        return f"{self.files[self.file_index[i]]} bars {bar + 1}-{bar + self.tokens.shape[1] // STEPS_PER_BAR}"


def is_sharded(data_dir: Path) -> bool:
    path = Path(data_dir) / "manifest.json"
    return path.exists() and json.loads(path.read_text()).get("format") == FORMAT


def load_split(data_dir: Path, split: str) -> Split:
    """A whole split in memory (a sharded split is concatenated: fine for evaluation, not for training)."""
    if is_sharded(data_dir):
        return ShardedSplit(data_dir, split).to_split()
    path = Path(data_dir) / f"{split}.npz"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `musicvae prepare --output_dir {data_dir}` first")
    manifest = json.loads((Path(data_dir) / "manifest.json").read_text())
    with np.load(path, allow_pickle=False) as arrays:
        feel = {k: arrays[k] for k in ("velocities", "offsets", "qpm") if k in arrays.files}
        return Split(arrays["tokens"], arrays["file_index"], arrays["start_bar"], manifest["files"][split], **feel)


def read_windows(data_dir: Path, split: str, limit: int) -> np.ndarray:
    """The first ``limit`` token windows of a split, reading no more shards than needed."""
    if is_sharded(data_dir):
        return ShardedSplit(data_dir, split).head(limit)
    return load_split(data_dir, split).tokens[:limit]


def fingerprint(data_dir: Path) -> str:
    return json.loads((Path(data_dir) / "manifest.json").read_text())["fingerprint"]



class ShardedSplit:
    """One split of a sharded corpus: shard sizes from the manifest, shards loaded on demand."""

    def __init__(self, data_dir: Path, split: str, manifest: dict | None = None) -> None:
        data_dir = Path(data_dir)
        manifest = manifest or json.loads((data_dir / "manifest.json").read_text())
        self.root = data_dir / SHARD_DIR
        self.split = split
        self.steps = int(manifest["steps"])
        self.entries = manifest["shards"][split]
        self.sizes = np.array([e["windows"] for e in self.entries], dtype=np.int64)

    def __len__(self) -> int:
        return int(self.sizes.sum())

    def load(self, i: int, field: str = "tokens") -> np.ndarray:
        with np.load(self.root / self.entries[i]["name"], allow_pickle=False) as arrays:
            return arrays[field]

    def head(self, limit: int) -> np.ndarray:
        parts, total = [], 0
        for i in range(len(self.entries)):
            if total >= limit:
                break
            parts.append(self.load(i)[: limit - total])
            total += len(parts[-1])
        return np.concatenate(parts) if parts else np.zeros((0, self.steps), np.uint16)

    def to_split(self) -> Split:
        tokens, file_index, start_bar, files = [], [], [], []
        for entry in self.entries:
            with np.load(self.root / entry["name"], allow_pickle=False) as arrays:
                tokens.append(arrays["tokens"])
                file_index.append(arrays["file_index"] + len(files))
                start_bar.append(arrays["start_bar"])
                files.extend(str(f) for f in arrays["files"])
        if not tokens:
            return Split(np.zeros((0, self.steps), np.uint16), np.zeros(0, np.int32), np.zeros(0, np.int32), [])
        return Split(np.concatenate(tokens), np.concatenate(file_index), np.concatenate(start_bar), files)


class ShardStream:
    """Training batches streamed from shards with a seeded two-level shuffle.

    Each epoch: the shards are permuted with ``rng([seed, epoch])`` and taken ``shuffle_shards`` at a
    time; the windows of such a group are permuted with ``rng([seed, epoch, g])``; the epoch is the
    concatenation of those groups, cut into global batches (the remainder is dropped).  Batch ``b`` of
    an epoch is a pure function of (seed, epoch, b), so a run resumes exactly, and every rank can
    take its own rows of the same global batch.  At most two groups are in memory (the next one is
    read in a background thread): ``2 * shuffle_shards * shard_windows * steps * 2`` bytes.
    """

    def __init__(self, split: ShardedSplit, global_batch: int, seed: int, shuffle_shards: int = 8) -> None:
        self.split = split
        self.global_batch = global_batch
        self.seed = seed
        self.group_shards = max(int(shuffle_shards), 1)
        self._cache: dict[tuple[int, int], np.ndarray | Future] = {}
        self._bounds: tuple[int, list[np.ndarray], np.ndarray] | None = None
        self._loader: ThreadPoolExecutor | None = None  # started by the first read-ahead, not here:
        # a stream made and then dropped before its reader's try/finally leaves no thread behind

    def num_batches(self, epoch: int) -> int:
        return len(self.split) // self.global_batch

    def _layout(self, epoch: int) -> tuple[list[np.ndarray], np.ndarray]:
        """The epoch's shard groups and where each group starts in the epoch order."""
        if self._bounds is None or self._bounds[0] != epoch:
            order = np.random.default_rng([self.seed, epoch]).permutation(len(self.split.entries))
            groups = [order[i : i + self.group_shards] for i in range(0, len(order), self.group_shards)]
            starts = np.cumsum([0] + [int(self.split.sizes[g].sum()) for g in groups])
            self._bounds = (epoch, groups, starts)
        return self._bounds[1], self._bounds[2]

    def _read_group(self, epoch: int, g: int, shards: np.ndarray) -> np.ndarray:
        tokens = np.concatenate([self.split.load(int(i)) for i in shards])
        return tokens[np.random.default_rng([self.seed, epoch, g]).permutation(len(tokens))]

    def _group(self, epoch: int, g: int) -> np.ndarray:
        groups, _ = self._layout(epoch)
        key = (epoch, g)
        if key not in self._cache:
            self._cache[key] = self._read_group(epoch, g, groups[g])
        value = self._cache[key]
        if isinstance(value, Future):
            value = self._cache[key] = value.result()
        for old in [k for k in self._cache if k < key]:  # keep the current group and the next
            del self._cache[old]
        following = (epoch, g + 1)
        if g + 1 < len(groups) and following not in self._cache:
            if self._loader is None:
                self._loader = ThreadPoolExecutor(1, thread_name_prefix="musicvae-shards")
            self._cache[following] = self._loader.submit(self._read_group, epoch, g + 1, groups[g + 1])
        return value

    def batch(self, epoch: int, b: int, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """Rows ``lo:hi`` of global batch ``b`` of ``epoch``: uint16 [hi - lo, steps]."""
        hi = self.global_batch if hi is None else hi
        _, starts = self._layout(epoch)
        begin, end = b * self.global_batch + lo, b * self.global_batch + hi
        parts = []
        while begin < end:
            g = int(np.searchsorted(starts, begin, side="right") - 1)
            tokens = self._group(epoch, g)
            take = min(end, int(starts[g + 1])) - begin
            parts.append(tokens[begin - starts[g] : begin - starts[g] + take])
            begin += take
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def close(self) -> None:
        """Stop the read-ahead thread (if one was started); the stream can still be read afterwards."""
        loader, self._loader = self._loader, None
        if loader is not None:
            loader.shutdown(wait=True, cancel_futures=True)
        self._cache = {k: v for k, v in self._cache.items() if not isinstance(v, Future)}

    def __enter__(self) -> ShardStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
