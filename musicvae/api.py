"""The trained-model API between the network and every front end (CLI, app, benchmarks).

Patterns in, patterns out: ``encode``, ``decode``, ``sample``, ``interpolate``, ``similar``, ``grid``
and ``reconstruct`` work on lists of :class:`DrumPattern` in batches; nothing here knows about MIDI
files or Streamlit.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from musicvae.model.fast import FastMusicVAE
from musicvae.model.network import MusicVAE
from musicvae.pattern import DEFAULT_QPM, DrumPattern, roll_tensor
from musicvae.training.checkpoint import load_model

REPO_ROOT = Path(__file__).resolve().parent.parent
CHECKPOINTS_DIR = REPO_ROOT / "checkpoints"
# The shipped models (issue: ship trained models): low KL samples well, high KL reconstructs.
DEFAULT_SAMPLE_MODEL = "hier-drums_4bar_small"
DEFAULT_INTERPOLATE_MODEL = "hier-drums_4bar_small_hikl"


class NoModelError(FileNotFoundError):
    """No trained checkpoint is installed where one was asked for."""


def shipped_checkpoint(name: str) -> Path:
    folder = Path(os.environ.get("MUSICVAE_CHECKPOINTS_DIR") or CHECKPOINTS_DIR) / name
    if not (folder / "model.safetensors").exists():
        raise NoModelError(
            f"No trained model '{name}' is installed in {folder.parent} "
            "(train one with `musicvae train` or pass --checkpoint)."
        )
    return folder


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of a [Z] and b [Z] at fractions t [S] -> [S, Z].

    Falls back to lerp when a and b are (anti)parallel, where sin(omega) ~ 0 (spec pitfall 12).
    """
    t = t[:, None]
    cos = torch.dot(a / a.norm().clamp_min(1e-12), b / b.norm().clamp_min(1e-12)).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    if torch.sin(omega).abs() < 1e-6:
        return (1 - t) * a + t * b
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


class TrainedModel:
    """A trained MusicVAE ready for inference (eval mode, no gradients)."""

    def __init__(self, model: MusicVAE, meta: dict, max_batch_size: int = 128) -> None:
        self.model = model.eval()
        self.meta = meta
        self.max_batch_size = max_batch_size
        self.fast = FastMusicVAE(self.model)  # a snapshot of the weights laid out for decoding (fast.py)

    @classmethod
    def load(cls, path: str | Path) -> TrainedModel:
        model, meta = load_model(Path(path))
        return cls(model, meta)

    @classmethod
    def shipped(cls, name: str = DEFAULT_SAMPLE_MODEL) -> TrainedModel:
        return cls.load(shipped_checkpoint(name))

    @property
    def name(self) -> str:
        return self.meta["config"]

    @property
    def num_steps(self) -> int:
        return self.model.hp.max_seq_len

    @property
    def z_size(self) -> int:
        return self.model.hp.z_size

    def _check(self, patterns: list[DrumPattern]) -> None:
        for pattern in patterns:
            if pattern.num_steps != self.num_steps:
                raise ValueError(f"the model takes {self.num_steps}-step patterns, got {pattern.num_steps}")

    @torch.inference_mode()
    def encode(self, patterns: list[DrumPattern], seed: int | None = None):
        """-> (z, mu, sigma), each [N, Z]; z is one posterior sample."""
        self._check(patterns)
        tokens = torch.from_numpy(np.stack([p.to_tokens() for p in patterns]))
        mus, sigmas = [], []
        for lo in range(0, len(patterns), self.max_batch_size):
            mu, sigma = self.model.encode(roll_tensor(tokens[lo : lo + self.max_batch_size]))
            mus.append(mu)
            sigmas.append(sigma)
        mu, sigma = torch.cat(mus), torch.cat(sigmas)
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        z = mu + sigma * torch.randn(mu.shape, generator=generator)
        return z, mu, sigma

    @torch.inference_mode()
    def decode(
        self, z: torch.Tensor, temperature: float = 0.5, seed: int | None = None, qpm: float = DEFAULT_QPM
    ) -> list[DrumPattern]:
        """z [N, Z] -> N patterns; temperature 0 decodes greedily (argmax)."""
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        z = torch.as_tensor(z, dtype=torch.float32)
        tokens = []
        for lo in range(0, z.shape[0], self.max_batch_size):
            _, batch_tokens = self.fast.free_run(z[lo : lo + self.max_batch_size], temperature, generator)
            tokens.append(batch_tokens)
        return [DrumPattern.from_tokens(t, qpm=qpm) for t in torch.cat(tokens).numpy()]

    def sample_z(self, n: int, seed: int | None = None) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        return torch.randn((n, self.z_size), generator=generator)

    def sample(self, n: int = 1, temperature: float = 0.5, seed: int | None = None, qpm: float = DEFAULT_QPM,
               z_offset: torch.Tensor | None = None):
        """n grooves from the prior (moved by ``z_offset``, e.g. attribute vectors); seed -> same grooves."""
        z = self.sample_z(n, seed)
        if z_offset is not None:
            z = z + z_offset
        return self.decode(z, temperature, None if seed is None else seed + 1, qpm)

    def interpolate(
        self,
        a: DrumPattern,
        b: DrumPattern,
        num_steps: int = 5,
        method: str = "slerp",
        temperature: float = 0.5,
        seed: int | None = None,
        qpm: float | None = None,
        z_offset: torch.Tensor | None = None,
    ) -> list[DrumPattern]:
        """num_steps grooves from a to b through mu-space, both endpoints included."""
        if num_steps < 2:
            raise ValueError("interpolation needs at least 2 steps (both endpoints)")
        _, mu, _ = self.encode([a, b])
        z = interpolate_z(mu[0], mu[1], num_steps, method)
        if z_offset is not None:
            z = z + z_offset
        return self.decode(z, temperature, seed, qpm=a.qpm if qpm is None else qpm)

    def reconstruct(self, patterns: list[DrumPattern]) -> list[DrumPattern]:
        """The greedy (temperature 0) decode of each groove's mu: what the model makes of it."""
        _, mu, _ = self.encode(patterns)
        return self.decode(mu, 0.0)

    def grid(self, corners: list[DrumPattern], n: int, temperature: float = 0.5, seed: int | None = None,
             qpm: float | None = None) -> list[DrumPattern]:
        """n x n grooves (row-major) blended between 4 corner grooves (top-left, top-right, bottom-left,
        bottom-right) through mu space: Beat Blender's grid."""
        _, mu, _ = self.encode(corners)
        return self.decode(bilinear_z(mu.numpy(), n), temperature, seed, qpm=corners[0].qpm if qpm is None else qpm)

    def similar(self, pattern: DrumPattern, n: int, similarity: float, temperature: float = 0.5, seed=None):
        """Variations around a groove: mix its mu with random draws (Magenta.js ``similar``)."""
        _, mu, _ = self.encode([pattern])
        z = similarity * mu + (1.0 - similarity) * self.sample_z(n, seed)
        return self.decode(z, temperature, None if seed is None else seed + 1, qpm=pattern.qpm)


def bilinear_weights(n: int) -> np.ndarray:
    """[n*n, 4] weights of the corners (top-left, top-right, bottom-left, bottom-right), row-major."""
    t = np.linspace(0.0, 1.0, n)
    v, u = np.meshgrid(t, t, indexing="ij")  # v down the rows, u across the columns
    u, v = u.ravel(), v.ravel()
    return np.stack([(1 - u) * (1 - v), u * (1 - v), (1 - u) * v, u * v], axis=1).astype(np.float32)


def bilinear_z(corners: np.ndarray, n: int) -> np.ndarray:
    """corners [4, Z] -> [n*n, Z] bilinear mix (Beat Blender's grid)."""
    return bilinear_weights(n) @ np.asarray(corners, dtype=np.float32)


def interpolate_z(a: torch.Tensor, b: torch.Tensor, num_steps: int, method: str = "slerp") -> torch.Tensor:
    t = torch.linspace(0.0, 1.0, num_steps)
    if method == "slerp":
        return slerp(a, b, t)
    if method == "lerp":
        return (1 - t)[:, None] * a + t[:, None] * b
    raise ValueError(f"method must be 'slerp' or 'lerp', not {method!r}")
