"""Groove attributes computed from a pattern's hits: the quantities the named sliders steer.

All take hits as a bool array [steps, 9] (16 steps per bar) or a batch [N, steps, 9] and return
a float (or [N] floats).  Formulas:

- ``density``: hits per bar (every (step, instrument) hit counts once);
- ``kick``, ``snare``, ``closed_hat``, ``open_hat``, ``toms``, ``cymbals``: hits per bar of that
  instrument group (toms = low + mid + high; cymbals = crash + ride);
- ``syncopation``: share of onsets (steps with any hit) that fall off the 8th-note grid
  (odd 16th positions);
- ``open_hat_ratio``: open hi-hat hits / all hi-hat hits (0 when there is no hi-hat);
- ``regularity``: mean Jaccard similarity of the hit sets of consecutive bars (1 = every bar the
  same; two empty bars count as identical);
- ``four_on_the_floor``: share of quarter-note positions with a kick, times the share of kicks that
  sit on quarter notes (1 = a kick on every beat and nowhere else).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from musicvae.pattern import STEPS_PER_BAR

KICK, SNARE, CLOSED_HAT, OPEN_HAT, LOW_TOM, MID_TOM, HIGH_TOM, CRASH, RIDE = range(9)


def _batch(hits: np.ndarray) -> np.ndarray:
    hits = np.asarray(hits, dtype=bool)
    return hits[None] if hits.ndim == 2 else hits


def _per_bar(hits: np.ndarray, classes: list[int]) -> np.ndarray:
    bars = hits.shape[1] / STEPS_PER_BAR
    return hits[:, :, classes].sum(axis=(1, 2)) / bars


def density(hits: np.ndarray) -> np.ndarray:
    return _per_bar(_batch(hits), list(range(9)))


def syncopation(hits: np.ndarray) -> np.ndarray:
    onsets = _batch(hits).any(axis=2)
    offbeat = onsets[:, 1::2].sum(axis=1)
    return offbeat / np.maximum(onsets.sum(axis=1), 1)


def open_hat_ratio(hits: np.ndarray) -> np.ndarray:
    h = _batch(hits)
    opened, closed = h[:, :, OPEN_HAT].sum(axis=1), h[:, :, CLOSED_HAT].sum(axis=1)
    return opened / np.maximum(opened + closed, 1)


def regularity(hits: np.ndarray) -> np.ndarray:
    h = _batch(hits)
    bars = h.reshape(h.shape[0], -1, STEPS_PER_BAR * h.shape[2])
    a, b = bars[:, :-1], bars[:, 1:]
    union = (a | b).sum(axis=2)
    jaccard = np.where(union == 0, 1.0, (a & b).sum(axis=2) / np.maximum(union, 1))
    return jaccard.mean(axis=1)


def four_on_the_floor(hits: np.ndarray) -> np.ndarray:
    kicks = _batch(hits)[:, :, KICK]
    on_quarters = kicks[:, ::4].sum(axis=1)
    coverage = on_quarters / kicks[:, ::4].shape[1]
    purity = on_quarters / np.maximum(kicks.sum(axis=1), 1)
    return coverage * purity


def _group(classes: list[int]) -> Callable[[np.ndarray], np.ndarray]:
    return lambda hits: _per_bar(_batch(hits), classes)


ATTRIBUTES: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]] = {
    # name: (slider label, function)
    "density": ("busier", density),
    "kick": ("more kick", _group([KICK])),
    "snare": ("more snare", _group([SNARE])),
    "closed_hat": ("more closed hi-hat", _group([CLOSED_HAT])),
    "open_hat": ("more open hi-hat", _group([OPEN_HAT])),
    "toms": ("more toms (fills)", _group([LOW_TOM, MID_TOM, HIGH_TOM])),
    "cymbals": ("more cymbals", _group([CRASH, RIDE])),
    "syncopation": ("more syncopated", syncopation),
    "open_hat_ratio": ("more open hats", open_hat_ratio),
    "regularity": ("more regular", regularity),
    "four_on_the_floor": ("four on the floor", four_on_the_floor),
}


def compute_all(hits: np.ndarray) -> dict[str, np.ndarray]:
    """Every attribute for a batch [N, steps, 9] (or one pattern [steps, 9])."""
    return {name: fn(hits) for name, (_, fn) in ATTRIBUTES.items()}
