"""The trained-model API between the network and every front end (CLI, app, benchmarks).

Patterns in, patterns out: ``encode``, ``decode``, ``sample``, ``interpolate``, ``similar``, ``grid``
and ``reconstruct`` work on lists of :class:`DrumPattern` in batches; nothing here knows about MIDI
files or Streamlit.  :class:`GrooveModel` wraps a groove model the same way: ``humanize`` plays
quantized grooves with a drummer's velocities and microtiming.

User grooves can be encoded *refined* (``refine=RefineSettings(...)``: gradient steps on z after
the encoder, ``musicvae.model.refine``) so that they come back closer to how they were played, and
a user groove can be encoded *anchored* (:meth:`TrainedModel.encode_anchored`: its code plus a
per-step logit bias, ``musicvae.model.anchor``) so that it decodes exactly as played, with the
anchor's weight fading with the distance from the groove along morphs, grids and variations
(:data:`ANCHOR_FADE_POWER`); interpolations can take *even* steps (``spacing="even"``,
``musicvae.latent.morph``): each step changes about as many hits.

Every decoding method takes ``playable`` (default False, Magenta's decoding): True never emits a step
needing more hands than a drummer has (``musicvae.evaluation.playability``: a 0/-inf mask on the
512 token logits, added after any anchor bias).  The tokens of the grooves a call starts from (the
uploads of ``interpolate``, ``grid``, ``similar``, ``reconstruct``) are always admitted, so a real
groove is never refused.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import torch

from musicvae.evaluation.playability import playable_logit_mask
from musicvae.latent.morph import corner_weights, even_t
from musicvae.model.anchor import Anchor, logit_bias, make_anchors
from musicvae.model.fast import FastMusicVAE
from musicvae.model.groove import GrooveVAE
from musicvae.model.network import MusicVAE
from musicvae.model.refine import RefineSettings, refine_latents
from musicvae.pattern import DEFAULT_QPM, STEPS_PER_BAR, DrumPattern, roll_tensor
from musicvae.resources import shipped
from musicvae.training.checkpoint import load_model

CHECKPOINTS_DIR = shipped("checkpoints")
# The shipped models (issue: ship trained models): low KL samples well, high KL reconstructs.
DEFAULT_SAMPLE_MODEL = "hier-drums_4bar_small_aug"
DEFAULT_INTERPOLATE_MODEL = "hier-drums_4bar_small_hikl_aug"
DEFAULT_HUMANIZE_MODEL = "groovae-hier_4bar_humanize"
# An anchor's weight at "closeness" c (1 at the groove, 0 at the far end of a morph, a grid's opposite
# corner or similarity 0) is c ** ANCHOR_FADE_POWER: chosen by measurement (docs/models.md, bench_anchors.py).
ANCHOR_FADE_POWER = 2.0
# Latent sliders: the anchor has faded out at this distance |z - code| from the groove's code (about a
# typical distance between two grooves' codes, so a slider walk fades it as a morph would).
ANCHOR_RADIUS = 12.0


@dataclasses.dataclass(frozen=True)
class Anchored:
    """A user groove as the model keeps it: its code [Z] and its anchor (decodes exactly at weight 1)."""

    code: torch.Tensor
    anchor: Anchor


def fade(closeness) -> np.ndarray:
    """The anchor weight at closeness 0..1 to the groove (1 = the groove itself)."""
    return np.clip(np.asarray(closeness, dtype=np.float32), 0.0, 1.0) ** ANCHOR_FADE_POWER


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


class _LoadedModel:
    """What both trained-model wrappers share: a model folder in, eval mode, its meta and name."""

    default_name = ""  # the shipped checkpoint :meth:`shipped` loads by default

    def __init__(self, model: MusicVAE, meta: dict, max_batch_size: int = 128) -> None:
        self.model = model.eval()
        self.meta = meta
        self.max_batch_size = max_batch_size

    @classmethod
    def load(cls, path: str | Path):
        model, meta = load_model(Path(path))
        return cls(model, meta)

    @classmethod
    def shipped(cls, name: str | None = None):
        return cls.load(shipped_checkpoint(name or cls.default_name))

    @property
    def name(self) -> str:
        return self.meta["config"]


class TrainedModel(_LoadedModel):
    """A trained MusicVAE ready for inference (eval mode, no gradients)."""

    default_name = DEFAULT_SAMPLE_MODEL

    def __init__(self, model: MusicVAE, meta: dict, max_batch_size: int = 128) -> None:
        if model.hp.output != "categorical":
            raise ValueError(f"{meta.get('config')} is a groove model (it humanizes grooves): use GrooveModel, "
                             "or `musicvae generate --mode humanize`")
        super().__init__(model, meta, max_batch_size)
        self.fast = FastMusicVAE(self.model)  # a snapshot of the weights laid out for decoding (fast.py)

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

    @property
    def mu_norm_limit(self) -> float | None:
        """The 99th percentile of |mu| over training windows (from the model's report), if known."""
        return self.meta.get("metrics", {}).get("train_subset", {}).get("mu_norm_p99")

    def encode_refined(self, patterns: list[DrumPattern], settings: RefineSettings | None = None):
        """-> (z [N, Z], info): mu moved by gradient steps toward the decoder's likelihood of each input.

        ``settings.max_norm`` defaults to :attr:`mu_norm_limit`; ``steps=0`` returns mu itself.
        ``info``: steps, seconds, per-groove hit F1 of the greedy decode before/after, |z| before/after.
        """
        settings = settings or RefineSettings()
        if settings.max_norm is None and self.mu_norm_limit is not None:
            settings = dataclasses.replace(settings, max_norm=float(self.mu_norm_limit))
        _, mu, _ = self.encode(patterns)
        tokens = torch.from_numpy(np.stack([p.to_tokens() for p in patterns]))
        return refine_latents(self.model, tokens, mu, settings, lambda z: self.fast.free_run(z, 0.0)[1])

    def codes(self, patterns: list[DrumPattern], refine: RefineSettings | None = None) -> torch.Tensor:
        """The z each groove is represented by: mu, or its refinement when ``refine`` is given."""
        if refine is not None and refine.steps > 0:
            return self.encode_refined(patterns, refine)[0]
        return self.encode(patterns)[1]

    def encode_anchored(self, patterns: list[DrumPattern], refine: RefineSettings | None = None) -> list[Anchored]:
        """Each groove's code (refined when ``refine`` is given) and its anchor, from one teacher-forced
        pass at that code: ``decode(code, 0.0, anchors=[anchor], weights=[[1]])`` is the groove, exactly."""
        codes = self.codes(patterns, refine)
        tokens = torch.from_numpy(np.stack([p.to_tokens() for p in patterns])).long()
        anchors = make_anchors(self.model, codes, tokens)
        return [Anchored(code, anchor) for code, anchor in zip(codes, anchors)]

    @torch.inference_mode()
    def decode(
        self, z: torch.Tensor, temperature: float = 0.5, seed: int | None = None, qpm: float = DEFAULT_QPM, *,
        anchors: list[Anchor] | None = None, weights: np.ndarray | None = None,
        playable: bool = False, admit: list[DrumPattern] | None = None,
    ) -> list[DrumPattern]:
        """z [N, Z] -> N patterns; temperature 0 decodes greedily (argmax).

        ``anchors`` (K) with ``weights`` [N, K]: each row's logits get its weighted anchor biases at every
        step (weight 1 at a groove's own code, temperature 0: that groove exactly; 0: the model's own).
        ``playable``: never a step needing three hands, except the steps of the ``admit`` grooves."""
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        z = torch.as_tensor(z, dtype=torch.float32)
        bias = logit_bias(anchors, weights) if anchors else None
        if bias is not None and bias.shape[0] != z.shape[0]:
            raise ValueError(f"weights has {bias.shape[0]} rows for {z.shape[0]} codes")
        mask = self.playable_mask(admit) if playable else None
        tokens = []
        for lo in range(0, z.shape[0], self.max_batch_size):
            rows = slice(lo, lo + self.max_batch_size)
            _, batch_tokens = self.fast.free_run(z[rows], temperature, generator,
                                                 logit_bias=None if bias is None else bias[rows], logit_mask=mask)
            tokens.append(batch_tokens)
        return [DrumPattern.from_tokens(t, qpm=qpm) for t in torch.cat(tokens).numpy()]

    @staticmethod
    def playable_mask(admit: list[DrumPattern] | None = None) -> torch.Tensor:
        """[512] logit mask of playable decoding, admitting every token of the ``admit`` grooves."""
        tokens = np.concatenate([p.to_tokens() for p in admit]) if admit else None
        return torch.from_numpy(playable_logit_mask(tokens))

    def sample_z(self, n: int, seed: int | None = None) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        return torch.randn((n, self.z_size), generator=generator)

    def sample(self, n: int = 1, temperature: float = 0.5, seed: int | None = None, qpm: float = DEFAULT_QPM,
               z_offset: torch.Tensor | None = None, playable: bool = False):
        """n grooves from the prior (moved by ``z_offset``, e.g. attribute vectors); seed -> same grooves."""
        z = self.sample_z(n, seed)
        if z_offset is not None:
            z = z + z_offset
        return self.decode(z, temperature, None if seed is None else seed + 1, qpm, playable=playable)

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
        spacing: str = "uniform",
        refine: RefineSettings | None = None,
        ends: torch.Tensor | list[Anchored] | None = None,
        anchor: bool = False,
        playable: bool = False,
    ) -> list[DrumPattern]:
        """num_steps grooves from a to b through z-space, both endpoints included.

        ``spacing``: "uniform" (equal steps of t, Magenta's) or "even" (t chosen so that each step
        changes about as many hits); ``refine``: encode the ends refined instead of taking mu;
        ``ends``: the two codes (from :meth:`codes`) or anchored grooves (from :meth:`encode_anchored`),
        when the caller already has them; ``anchor``: the ends are anchored (A's anchor weighs
        ``fade(1 - t)``, B's ``fade(t)``), so at temperature 0 the first and last steps are a and b exactly.
        """
        if num_steps < 2:
            raise ValueError("interpolation needs at least 2 steps (both endpoints)")
        if ends is None:
            ends = self.encode_anchored([a, b], refine) if anchor else self.codes([a, b], refine)
        codes, anchors = codes_and_anchors(ends)
        t_np = self.morph_t(codes[0], codes[1], num_steps, method, spacing, z_offset, anchors)
        z = path_z(codes[0], codes[1], torch.from_numpy(t_np).float(), method)
        if z_offset is not None:
            z = z + z_offset
        return self.decode(z, temperature, seed, qpm=a.qpm if qpm is None else qpm, anchors=anchors,
                           weights=morph_weights(t_np) if anchors else None, playable=playable, admit=[a, b])

    def morph_t(self, a: torch.Tensor, b: torch.Tensor, num_steps: int, method: str = "slerp",
                spacing: str = "uniform", z_offset: torch.Tensor | None = None,
                anchors: list[Anchor] | None = None) -> np.ndarray:
        """The t values (0..1) of an interpolation's steps between codes a and b (with their anchors)."""
        if spacing == "uniform":
            return np.linspace(0.0, 1.0, num_steps)
        if spacing != "even":
            raise ValueError(f"spacing must be 'uniform' or 'even', not {spacing!r}")

        def greedy_grids(ts: np.ndarray) -> list[np.ndarray]:
            z = path_z(a, b, torch.from_numpy(ts).float(), method)
            decoded = self.decode(z if z_offset is None else z + z_offset, 0.0, anchors=anchors,
                                  weights=morph_weights(ts) if anchors else None)
            return [p.hits for p in decoded]

        return even_t(greedy_grids, num_steps)

    def reconstruct(self, patterns: list[DrumPattern], refine: RefineSettings | None = None,
                    anchor: bool = False, playable: bool = False,
                    codes: torch.Tensor | list[Anchored] | None = None) -> list[DrumPattern]:
        """The greedy (temperature 0) decode of each groove's code: what the model makes of it (with
        ``anchor``: the anchored decode, which is each groove exactly).  ``codes``: the grooves' codes or
        anchored grooves when the caller already has them (one encoding serves both decodes)."""
        if codes is None:
            codes = self.encode_anchored(patterns, refine) if anchor else self.codes(patterns, refine)
        z, anchors = codes_and_anchors(codes)
        if not anchor:
            return self.decode(z, 0.0, playable=playable, admit=patterns)
        if anchors is None:
            raise ValueError("an anchored reconstruction needs anchored codes (encode_anchored)")
        return self.decode(z, 0.0, anchors=anchors, weights=np.eye(len(anchors), dtype=np.float32),
                           playable=playable, admit=patterns)

    def grid(self, corners: list[DrumPattern], n: int, temperature: float = 0.5, seed: int | None = None,
             qpm: float | None = None, refine: RefineSettings | None = None,
             codes: torch.Tensor | np.ndarray | list[Anchored] | None = None,
             anchor: bool = False, playable: bool = False) -> list[DrumPattern]:
        """n x n grooves (row-major) blended between 4 corner grooves (top-left, top-right, bottom-left,
        bottom-right) through z space: Beat Blender's grid. ``codes``: the corners' codes or anchored
        grooves when the caller already has them; ``anchor``: anchored corners (each corner's anchor
        weighs ``fade`` of its bilinear weight, so at temperature 0 the corner cells are the corners)."""
        if codes is None:
            codes = self.encode_anchored(corners, refine) if anchor else self.codes(corners, refine)
        z, anchors = codes_and_anchors(codes)
        return self.decode(bilinear_z(z.numpy(), n), temperature, seed, qpm=corners[0].qpm if qpm is None else qpm,
                           anchors=anchors, weights=fade(bilinear_weights(n)) if anchors else None,
                           playable=playable, admit=corners)

    def similar(self, pattern: DrumPattern, n: int, similarity: float, temperature: float = 0.5, seed=None,
                refine: RefineSettings | None = None, anchor: bool = False, playable: bool = False):
        """Variations around a groove: mix its code with random draws (Magenta.js ``similar``); with
        ``anchor`` the groove's anchor weighs ``fade(similarity)`` (similarity 1: the groove itself)."""
        code = self.encode_anchored([pattern], refine)[0] if anchor else self.codes([pattern], refine)
        return self.vary(code, n, similarity, temperature, seed, qpm=pattern.qpm, playable=playable, admit=[pattern])

    def vary(self, code: torch.Tensor | Anchored, n: int, similarity: float, temperature: float = 0.5, seed=None,
             qpm: float = DEFAULT_QPM, playable: bool = False,
             admit: list[DrumPattern] | None = None) -> list[DrumPattern]:
        """:meth:`similar` from a groove's code [1, Z] (or its :class:`Anchored`) already encoded (the app
        encodes once, then varies); ``admit``: the groove itself, for ``playable``."""
        anchors = [code.anchor] if isinstance(code, Anchored) else None
        base = code.code[None] if anchors else code
        z = similarity * base + (1.0 - similarity) * self.sample_z(n, seed)
        return self.decode(z, temperature, None if seed is None else seed + 1, qpm=qpm, anchors=anchors,
                           weights=np.full((n, 1), fade(similarity), np.float32) if anchors else None,
                           playable=playable, admit=admit)

    def steered(self, z: np.ndarray | torch.Tensor, temperature: float, seed: int | None,
                base: Anchored | None = None, qpm: float = DEFAULT_QPM, playable: bool = False) -> list[DrumPattern]:
        """Decode codes z [N, Z] moved from a groove's code (Latent sliders): the groove's anchor, when
        given, weighs ``fade(1 - |z - code| / ANCHOR_RADIUS)``, so it fades as z moves away."""
        if base is None:
            return self.decode(z, temperature, seed, qpm, playable=playable)
        z = torch.as_tensor(z, dtype=torch.float32)
        distance = (z - base.code[None]).norm(dim=1).numpy()
        weights = fade(1.0 - distance / ANCHOR_RADIUS)[:, None]
        return self.decode(z, temperature, seed, qpm, anchors=[base.anchor], weights=weights, playable=playable)


class GrooveModel(_LoadedModel):
    """A trained groove model (``musicvae.model.groove``) ready for inference: humanize grooves."""

    default_name = DEFAULT_HUMANIZE_MODEL

    def __init__(self, model: GrooveVAE, meta: dict, max_batch_size: int = 128) -> None:
        if not isinstance(model, GrooveVAE):
            raise ValueError(f"{meta.get('config')} is not a groove model: load it with TrainedModel")
        super().__init__(model, meta, max_batch_size)

    @torch.inference_mode()
    def humanize(self, patterns: list[DrumPattern], variation: float = 0.0,
                 seed: int | None = None) -> list[DrumPattern]:
        """Each groove's hits played with velocities and offsets; the hits themselves never change.

        Any pattern feel is ignored (the model reads the quantized hits).  Grooves of any whole number of
        bars are played 4 bars (the model's window) at a time.  ``variation`` 0 gives the model's most
        likely performance; above 0, z is drawn that many posterior standard deviations around it, so
        each ``seed`` plays the groove a little differently.
        """
        hp = self.model.hp
        if hp.groove_input != "humanize" or not hp.hits_as_controls:
            raise ValueError(f"{self.name} is not a humanize model")
        window = hp.max_seq_len
        pieces, owners = [], []
        for index, pattern in enumerate(patterns):
            if pattern.num_steps % STEPS_PER_BAR:
                raise ValueError(f"humanize takes whole bars, got {pattern.num_steps} steps")
            hits = pattern.hits
            padded = np.zeros((-(-len(hits) // window) * window, hits.shape[1]), dtype=bool)
            padded[: len(hits)] = hits
            pieces.extend(padded.reshape(-1, window, hits.shape[1]))
            owners.extend([index] * (len(padded) // window))
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        played = []
        for lo in range(0, len(pieces), self.max_batch_size):
            hits = torch.from_numpy(np.stack(pieces[lo : lo + self.max_batch_size])).float()
            frames = torch.cat([hits, torch.zeros(*hits.shape[:2], 2 * hits.shape[2])], dim=-1)
            mu, sigma = self.model.encode_frames(frames)
            z = mu + variation * sigma * torch.randn(mu.shape, generator=generator) if variation > 0 else mu
            played.append(self.model.free_run_frames(z, 0.0, generator, hits=hits)[1].numpy())
        frames_out = np.concatenate(played) if played else np.zeros((0, window, 27), np.float32)
        results = []
        for index, pattern in enumerate(patterns):
            mine = frames_out[[i for i, owner in enumerate(owners) if owner == index]].reshape(-1, 27)
            grooved = DrumPattern.from_groove(mine[: pattern.num_steps], pattern.qpm, pattern.source)
            grooved.hits = pattern.hits.copy()  # the model read them as controls: already the same
            results.append(grooved)
        return results


def codes_and_anchors(codes) -> tuple[torch.Tensor, list[Anchor] | None]:
    """Codes [N, Z] (tensor or array) -> (them, None); anchored grooves (list of :class:`Anchored`) ->
    (their codes stacked, their anchors)."""
    if isinstance(codes, list):
        return torch.stack([c.code for c in codes]), [c.anchor for c in codes]
    return torch.as_tensor(codes), None


def morph_weights(t) -> np.ndarray:
    """[S, 2] anchor weights of a morph's ends at fractions t [S]: A's falls as B's rises."""
    t = np.asarray(t, dtype=np.float32)
    return np.stack([fade(1.0 - t), fade(t)], axis=1)


def bilinear_weights(n: int) -> np.ndarray:
    """[n*n, 4] weights of the corners (top-left, top-right, bottom-left, bottom-right), row-major."""
    t = np.linspace(0.0, 1.0, n)
    v, u = np.meshgrid(t, t, indexing="ij")  # v down the rows, u across the columns
    return corner_weights(u.ravel(), v.ravel())


def bilinear_z(corners: np.ndarray, n: int) -> np.ndarray:
    """corners [4, Z] -> [n*n, Z] bilinear mix (Beat Blender's grid)."""
    return bilinear_weights(n) @ np.asarray(corners, dtype=np.float32)


def path_z(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor, method: str = "slerp") -> torch.Tensor:
    """Points [S, Z] at fractions t [S] of the path from a to b."""
    if method == "slerp":
        return slerp(a, b, t)
    if method == "lerp":
        return (1 - t)[:, None] * a + t[:, None] * b
    raise ValueError(f"method must be 'slerp' or 'lerp', not {method!r}")
