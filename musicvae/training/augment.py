"""On-the-fly data augmentation for training, on token batches [B, T] (bit c = drum class c).

Every transform is a named hparam holding its probability per window (``aug_*``; all 0 in the
reference configs, so ``hier-drums_4bar_small`` trains exactly as before). The random stream is a
pure function of ``(seed, step)``: a resumed run draws the same augmentations as a straight one.

The transforms are the changes drummers make to a groove while it stays a groove:
- ``aug_layer_mix``: the kick/snare/toms of one window under the hats/cymbals of another window
  of the same batch (grooves share a grid, so any body fits any timekeeper);
- ``aug_timekeeper_swap``: closed hi-hat <-> ride as the timekeeper;
- ``aug_tom_permute``: a random permutation of the three toms;
- ``aug_crash_ride_swap``: crash <-> ride accents;
- ``aug_bar_recombine``: the 4 bars of a window re-drawn from its own bars (repeats allowed);
- ``denoise_prob``: the *encoder* sees a corrupted copy (hits dropped, added, or moved by one step)
  while the decoder must rebuild the clean window (a denoising VAE objective).
"""

from __future__ import annotations

import numpy as np

from musicvae.pattern import STEPS_PER_BAR

KICK, SNARE, CLOSED_HH, OPEN_HH, LOW_TOM, MID_TOM, HIGH_TOM, CRASH, RIDE = range(9)
BODY_MASK = sum(1 << c for c in (KICK, SNARE, LOW_TOM, MID_TOM, HIGH_TOM))
CYMBAL_MASK = sum(1 << c for c in (CLOSED_HH, OPEN_HH, CRASH, RIDE))
TOMS = (LOW_TOM, MID_TOM, HIGH_TOM)
AUGMENT_HPARAMS = ("aug_layer_mix", "aug_timekeeper_swap", "aug_tom_permute", "aug_crash_ride_swap",
                   "aug_bar_recombine")


def swap_bits(tokens: np.ndarray, a: int, b: int) -> np.ndarray:
    """Exchange classes a and b in every token."""
    bit_a, bit_b = (tokens >> a) & 1, (tokens >> b) & 1
    cleared = tokens & ~((1 << a) | (1 << b))
    return cleared | (bit_a << b) | (bit_b << a)


def permute_bits(tokens: np.ndarray, classes: tuple[int, ...], order: np.ndarray) -> np.ndarray:
    """Class classes[i] becomes classes[order[i]]."""
    cleared = tokens & ~sum(1 << c for c in classes)
    for source, target in zip(classes, (classes[i] for i in order)):
        cleared = cleared | (((tokens >> source) & 1) << target)
    return cleared


def augment_batch(tokens: np.ndarray, hp, rng: np.random.Generator) -> np.ndarray:
    """Targets for one training batch: each transform hits each window with its own probability."""
    tokens = tokens.astype(np.int64, copy=True)
    batch = len(tokens)

    def chosen(prob: float) -> np.ndarray:
        return np.flatnonzero(rng.random(batch) < prob) if prob > 0 else np.zeros(0, np.int64)

    rows = chosen(hp.aug_layer_mix)
    if len(rows):
        partners = rng.integers(0, batch, len(rows))
        tokens[rows] = (tokens[rows] & BODY_MASK) | (tokens[partners] & CYMBAL_MASK)
    rows = chosen(hp.aug_timekeeper_swap)
    tokens[rows] = swap_bits(tokens[rows], CLOSED_HH, RIDE)
    rows = chosen(hp.aug_crash_ride_swap)
    tokens[rows] = swap_bits(tokens[rows], CRASH, RIDE)
    for row in chosen(hp.aug_tom_permute):
        tokens[row] = permute_bits(tokens[row], TOMS, rng.permutation(len(TOMS)))
    bars = tokens.shape[1] // STEPS_PER_BAR
    for row in chosen(hp.aug_bar_recombine):
        order = rng.integers(0, bars, bars)
        tokens[row] = tokens[row].reshape(bars, STEPS_PER_BAR)[order].reshape(-1)
    return tokens


def corrupt(tokens: np.ndarray, hp, rng: np.random.Generator) -> np.ndarray:
    """The encoder's view for the denoising objective (a window is corrupted with ``denoise_prob``).

    A corrupted window loses each hit with ``denoise_drop``, gains a hit at each empty (step, class)
    with ``denoise_add``, and has each hit moved one step early or late with ``denoise_shift``.
    """
    noisy = tokens.astype(np.int64, copy=True)
    rows = np.flatnonzero(rng.random(len(noisy)) < hp.denoise_prob) if hp.denoise_prob > 0 else []
    if len(rows) == 0:
        return noisy
    bits = 1 << np.arange(9)
    hits = (noisy[rows, :, None] & bits) != 0  # [R, T, 9]
    moved = hits & (rng.random(hits.shape) < hp.denoise_shift)
    hits &= ~moved
    direction = rng.integers(0, 2, moved.shape).astype(bool)
    hits |= np.roll(moved & direction, 1, axis=1) | np.roll(moved & ~direction, -1, axis=1)
    hits &= rng.random(hits.shape) >= hp.denoise_drop
    hits |= rng.random(hits.shape) < hp.denoise_add
    noisy[rows] = (hits * bits).sum(-1)
    return noisy


def augment_grooves(frames: np.ndarray, hp, rng: np.random.Generator) -> np.ndarray:
    """The same transforms on groove frames [B, T, 27]: a drum's velocities and offsets move with its hits.

    Each window draws the same coins as :func:`augment_batch` would, in the same order."""
    cells = frames.reshape(*frames.shape[:2], 3, 9).copy()  # [B, T, (hit, velocity, offset), drum]
    batch = len(cells)

    def chosen(prob: float) -> np.ndarray:
        return np.flatnonzero(rng.random(batch) < prob) if prob > 0 else np.zeros(0, np.int64)

    cymbals = [CLOSED_HH, OPEN_HH, CRASH, RIDE]
    rows = chosen(hp.aug_layer_mix)
    if len(rows):
        partners = rng.integers(0, batch, len(rows))
        cells[rows[:, None], :, :, cymbals] = cells[partners[:, None], :, :, cymbals]
    for prob, (a, b) in ((hp.aug_timekeeper_swap, (CLOSED_HH, RIDE)), (hp.aug_crash_ride_swap, (CRASH, RIDE))):
        rows = chosen(prob)
        cells[rows[:, None], :, :, [a, b]] = cells[rows[:, None], :, :, [b, a]]
    for row in chosen(hp.aug_tom_permute):
        order = rng.permutation(len(TOMS))
        cells[row][..., [TOMS[i] for i in order]] = cells[row][..., list(TOMS)]
    bars = cells.shape[1] // STEPS_PER_BAR
    for row in chosen(hp.aug_bar_recombine):
        order = rng.integers(0, bars, bars)
        cells[row] = cells[row].reshape(bars, STEPS_PER_BAR, 3, 9)[order].reshape(-1, 3, 9)
    return cells.reshape(frames.shape)


def training_batch(tokens: np.ndarray, hp, seed: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """(decoder targets, encoder input) for a step; identical tokens when every transform is off.

    Groove models pass frames [B, T, 27] instead of tokens (their encoder view is made by the model)."""
    rng = np.random.default_rng([seed, step, 0xA06])
    if tokens.ndim == 3:
        augmented = any(getattr(hp, k) > 0 for k in AUGMENT_HPARAMS)
        frames = augment_grooves(tokens, hp, rng) if augmented else tokens
        return frames, frames
    targets = augment_batch(tokens, hp, rng) if any(getattr(hp, k) > 0 for k in AUGMENT_HPARAMS) else tokens
    if hp.denoise_prob > 0:
        return targets, corrupt(targets, hp, rng)
    return targets, targets
