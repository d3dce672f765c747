"""Even morphs: interpolation steps chosen so that each step changes about as many hits.

A slerp with equally spaced t bunches its changes where the decoder switches from one groove to
the other (often in the middle, or a hi-hat -> ride switch in one jump). Here a fine path of t is
decoded greedily, intervals whose decodes differ a lot are bisected (up to a decode budget), and
the interior steps are placed at equal shares of the cumulative hit change along the path.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def corner_weights(u, v) -> np.ndarray:
    """Bilinear weights [..., 4] of the corners (top-left, top-right, bottom-left, bottom-right) at
    u across and v down (0..1): the grid's cells and the pad's puck mix the corner codes with these."""
    u, v = np.asarray(u, dtype=np.float32), np.asarray(v, dtype=np.float32)
    return np.stack([(1 - u) * (1 - v), u * (1 - v), (1 - u) * v, u * v], axis=-1)


def _changes(grids: list[np.ndarray]) -> np.ndarray:
    return np.array([int((a != b).sum()) for a, b in zip(grids[:-1], grids[1:])])


def even_t(decode: Callable[[np.ndarray], list[np.ndarray]], num_steps: int, fine: int = 17,
           max_decodes: int = 96) -> np.ndarray:
    """t values (0 and 1 included) for ``num_steps`` steps of equal hit change.

    ``decode(ts) -> hit grids`` decodes the path at the given t values (greedy, so the grid is a
    pure function of t). The path is refined by bisecting the interval with the largest change
    until it changes at most one hit or the budget of ``max_decodes`` decodes is spent.
    """
    if num_steps < 2:
        raise ValueError("a morph needs at least 2 steps")
    ts = list(np.linspace(0.0, 1.0, fine))
    grids = list(decode(np.array(ts)))
    while len(ts) < max_decodes:
        changes = _changes(grids)
        if changes.max() <= 1:
            break
        # bisect the few largest intervals in one batched decode
        order = np.argsort(-changes)[: min(8, max_decodes - len(ts))]
        order = [i for i in order if changes[i] > 1]
        mids = np.array([(ts[i] + ts[i + 1]) / 2 for i in order])
        new = decode(mids)
        for i, t, g in sorted(zip(order, mids, new), key=lambda x: -x[0]):
            ts.insert(i + 1, float(t))
            grids.insert(i + 1, g)
    if num_steps > len(ts):  # more steps than distinct decodes: nothing to even out
        return np.linspace(0.0, 1.0, num_steps)
    return np.array(ts)[_even_choice(np.stack(grids), num_steps)]


def _spread(dist: np.ndarray, chosen: list[int]) -> float:
    """Largest / smallest step change of a choice (a step that changes nothing counts as 0.5)."""
    steps = [dist[a, b] for a, b in zip(chosen[:-1], chosen[1:])]
    return max(steps) / max(min(steps), 0.5)


def _even_choice(grids: np.ndarray, num_steps: int) -> list[int]:
    """Indices (first and last included) of num_steps grids whose consecutive distances are as equal
    as possible: the better (smaller largest/smallest step) of a least-squares choice, which keeps
    the typical step even, and a minimax one, which bounds the worst ratio. Distances are real Hamming
    distances between the chosen grids (not sums along the path, which count a hit that flips back
    twice)."""
    n = len(grids)
    flat = grids.reshape(n, -1)
    dist = (flat[:, None, :] != flat[None, :, :]).sum(-1).astype(float)
    candidates = [_least_squares_choice(dist, num_steps), _minimax_choice(dist, num_steps)]
    return min((c for c in candidates if c is not None), key=lambda c: _spread(dist, c))


def _minimax_choice(dist: np.ndarray, num_steps: int) -> list[int] | None:
    """The choice with the smallest largest/smallest step: for each floor ``lo`` (a distance that
    occurs), dynamic programming on the largest step over paths whose steps are all >= lo."""
    n = len(dist)
    best_ratio, best = np.inf, None
    for lo in np.unique(dist[dist >= 1]):
        allowed = np.where(np.triu(dist >= lo, 1), dist, np.inf)  # steps i -> j > i of at least lo
        worst = np.full(n, np.inf)
        worst[0] = 0.0
        backs = []
        for _ in range(num_steps - 1):
            through = np.maximum(worst[:, None], allowed)  # [i, j]: the largest step on the way to j via i
            back = through.argmin(0)
            worst = through[back, np.arange(n)]
            backs.append(back)
        if np.isfinite(worst[-1]) and worst[-1] / lo < best_ratio - 1e-9:
            chosen = [n - 1]
            for back in reversed(backs):
                chosen.append(int(back[chosen[-1]]))
            best_ratio, best = worst[-1] / lo, chosen[::-1]
    return best


def _least_squares_choice(dist: np.ndarray, num_steps: int, rounds: int = 3) -> list[int]:
    """Dynamic programming on the squared log-ratio of each step to a target step size, the target
    then re-estimated from the chosen steps."""
    n = len(dist)
    target = max(dist[0, -1] / (num_steps - 1), 1.0)
    chosen: list[int] = [0, n - 1]
    for _ in range(rounds):
        cost = np.log((dist + 1.0) / (target + 1.0)) ** 2
        best = np.full((num_steps, n), np.inf)
        back = np.zeros((num_steps, n), np.int64)
        best[0, 0] = 0.0
        for k in range(1, num_steps):
            for j in range(k, n):
                candidates = best[k - 1, :j] + cost[:j, j]
                back[k, j] = int(candidates.argmin())
                best[k, j] = candidates[back[k, j]]
        chosen = [n - 1]
        for k in range(num_steps - 1, 0, -1):
            chosen.append(int(back[k, chosen[-1]]))
        chosen = chosen[::-1]
        target = max(float(np.mean([dist[a, b] for a, b in zip(chosen[:-1], chosen[1:])])), 1.0)
    return chosen
