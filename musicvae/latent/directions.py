"""Principal directions of the training set's posterior means, stored next to a checkpoint.

``musicvae directions --checkpoint DIR [--examples_path data/gmd]`` encodes the GMD train
windows, takes the principal components of their mu (ordered by variance) and writes
``DIR/directions.safetensors`` (``vectors`` [K, Z] unit vectors, ``scales`` [K] the standard
deviation of mu along each, ``mean`` [Z]) and ``DIR/directions.json`` (one entry per direction:
name, kind, explained variance, and how it correlates with the number of hits, whose sign is
fixed so that "+" means "busier" on average).  The latent-slider panel moves z by
``alpha * scale * vector``; a later issue adds named attribute vectors to the same files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from musicvae.fileio import atomic_write_bytes, atomic_write_text
from musicvae.pattern import DrumPattern, hits_from_tokens

VECTORS_FILE = "directions.safetensors"
INDEX_FILE = "directions.json"


@dataclass
class Directions:
    vectors: np.ndarray  # [K, Z] unit vectors
    scales: np.ndarray  # [K] std of mu along each vector (one slider unit)
    mean: np.ndarray  # [Z] mean of mu
    entries: list[dict] = field(default_factory=list)  # name, kind, explained_variance, ...
    info: dict = field(default_factory=dict)  # config, step, windows used, data fingerprint

    @property
    def names(self) -> list[str]:
        return [e["name"] for e in self.entries]

    def offset(self, alphas: dict[int, float]) -> np.ndarray:
        """The z offset of moving ``alpha`` slider units along each chosen direction."""
        delta = np.zeros(self.vectors.shape[1], dtype=np.float32)
        for index, alpha in alphas.items():
            delta += float(alpha) * float(self.scales[index]) * self.vectors[index]
        return delta


def principal_directions(mu: np.ndarray, hits_per_window: np.ndarray | None = None, k: int = 16) -> Directions:
    """PCA of mu [N, Z]: the top ``k`` components, signs fixed to correlate with density."""
    mu = np.asarray(mu, dtype=np.float64)
    mean = mu.mean(axis=0)
    centred = mu - mean
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    variance = singular**2 / max(len(mu) - 1, 1)
    total = float(variance.sum()) or 1.0
    k = min(k, vt.shape[0])
    vectors, scales, entries = [], [], []
    for i in range(k):
        vector = vt[i]
        projection = centred @ vector
        corr = 0.0
        if hits_per_window is not None and np.std(projection) > 0 and np.std(hits_per_window) > 0:
            corr = float(np.corrcoef(projection, hits_per_window)[0, 1])
            if corr < 0:
                vector, corr = -vector, -corr
        vectors.append(vector)
        scales.append(float(np.sqrt(variance[i])))
        entries.append({
            "name": f"PC{i + 1}",
            "kind": "pca",
            "explained_variance": round(float(variance[i]) / total, 4),
            "hits_correlation": round(corr, 3),
        })
    return Directions(np.asarray(vectors, np.float32), np.asarray(scales, np.float32), mean.astype(np.float32),
                      entries)


def training_subset(tokens: np.ndarray, max_windows: int, rng: np.random.Generator) -> np.ndarray:
    """A random subset of at most ``max_windows`` windows, in their original order."""
    tokens = np.asarray(tokens)
    if len(tokens) > max_windows:
        tokens = tokens[np.sort(rng.choice(len(tokens), max_windows, replace=False))]
    return tokens


def encode_mu(model, tokens: np.ndarray) -> np.ndarray:
    """Posterior means [N, Z] of token windows (TrainedModel.encode batches them)."""
    _, mu, _ = model.encode([DrumPattern.from_tokens(t) for t in tokens])
    return mu.numpy()


def directions_from_mu(mu: np.ndarray, tokens: np.ndarray, k: int = 16) -> Directions:
    if len(tokens) < 2:
        raise ValueError("need at least 2 windows to compute directions")
    hits = hits_from_tokens(tokens.astype(np.int64)).sum(axis=(1, 2)).astype(np.float64)
    directions = principal_directions(mu, hits, k)
    directions.info = {"windows": int(len(tokens))}
    return directions


def compute_directions(model, tokens: np.ndarray, k: int = 16, max_windows: int = 8192, seed: int = 0) -> Directions:
    """Encode (a random subset of) training windows with a TrainedModel and take their PCA."""
    tokens = training_subset(tokens, max_windows, np.random.default_rng(seed))
    return directions_from_mu(encode_mu(model, tokens), tokens, k)


def save_directions(folder: Path, directions: Directions) -> None:
    """Write both files atomically next to the checkpoint."""
    from safetensors.numpy import save

    folder = Path(folder)
    atomic_write_bytes(folder / VECTORS_FILE,
                       save({"vectors": directions.vectors, "scales": directions.scales, "mean": directions.mean}))
    atomic_write_text(folder / INDEX_FILE, json.dumps({"info": directions.info, "directions": directions.entries},
                                                      indent=1))


def load_directions(folder: Path, z_size: int | None = None) -> Directions | None:
    """The stored directions of a checkpoint folder, or None when there are none (or they do not fit)."""
    from safetensors.numpy import load_file

    folder = Path(folder)
    if not (folder / VECTORS_FILE).exists() or not (folder / INDEX_FILE).exists():
        return None
    tensors = load_file(str(folder / VECTORS_FILE))
    index = json.loads((folder / INDEX_FILE).read_text())
    directions = Directions(tensors["vectors"], tensors["scales"], tensors["mean"], index["directions"],
                            index.get("info", {}))
    if len(directions.entries) != directions.vectors.shape[0]:
        return None
    if z_size is not None and directions.vectors.shape[1] != z_size:
        return None
    return directions
