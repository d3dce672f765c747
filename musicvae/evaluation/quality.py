"""Model-quality measures against baselines: retrieval, the generalisation gap, sample musicality.

All functions take hit grids ``[N, steps, 9]`` (bool) and return plain numbers, so a report, a
test or a notebook can use them without a model.

- *Retrieval baseline*: each query window is answered with its nearest training window (Hamming
  distance on the hit grid). A model that reconstructs worse than this copies less than it memorises.
- *Degenerate sample* (precise, data-checked: see ``degenerate_mask``): empty; denser than the
  densest reference window; one non-timekeeper drum (anything but closed hi-hat and ride) struck on
  32 or more consecutive steps (a roll over two whole bars); or two or more bars with neither kick
  nor snare. The roll length is set on the data: 6.4% of GMD's test windows hold a 16-step snare
  roll (one-bar fills are music), 1.0% a 32-step one; the whole definition flags 1.5% of them.
- *Bar repetition*: the Jaccard index of bar 1's hits with bar 2's and with bar 3's, averaged (real
  drumming repeats itself; a sampler that never does sounds random).
"""

from __future__ import annotations

import numpy as np

from musicvae.pattern import CLASS_NAMES, STEPS_PER_BAR

TIMEKEEPERS = (CLASS_NAMES.index("closed hi-hat"), CLASS_NAMES.index("ride"))
KICK, SNARE = CLASS_NAMES.index("kick"), CLASS_NAMES.index("snare")
ROLL_STEPS = 32


def f1_counts(truth: np.ndarray, guess: np.ndarray) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) over every (window, step, class)."""
    return int((truth & guess).sum()), int((~truth & guess).sum()), int((truth & ~guess).sum())


def f1_from_counts(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / max(2 * tp + fp + fn, 1)


def per_instrument_f1(truth: np.ndarray, guess: np.ndarray) -> dict[str, float]:
    return {name: round(f1_from_counts(*f1_counts(truth[..., c], guess[..., c])), 4)
            for c, name in enumerate(CLASS_NAMES)}


def nearest_windows(queries: np.ndarray, corpus: np.ndarray, chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """For each query grid, the index of the nearest corpus grid and its Hamming distance.

    Hamming(a, b) = |a| + |b| - 2 a.b, computed as one float32 matrix product per chunk.
    """
    flat_corpus = corpus.reshape(len(corpus), -1).astype(np.float32)
    corpus_sizes = flat_corpus.sum(1)
    index, distance = np.zeros(len(queries), np.int64), np.zeros(len(queries), np.int64)
    for lo in range(0, len(queries), chunk):
        q = queries[lo : lo + chunk].reshape(-1, flat_corpus.shape[1]).astype(np.float32)
        dist = q.sum(1)[:, None] + corpus_sizes[None] - 2 * (q @ flat_corpus.T)
        index[lo : lo + chunk] = dist.argmin(1)
        distance[lo : lo + chunk] = np.rint(dist.min(1)).astype(np.int64)
    return index, distance


def retrieval_baseline(queries: np.ndarray, train: np.ndarray, model_guess: np.ndarray | None = None) -> dict:
    """Hit F1 of answering each query with its nearest training window (overall and per instrument).

    With ``model_guess`` (a model's reconstructions of the queries) it also gives the share of windows
    where the copy beats the model, and how far the model's answers lie from the training set.
    """
    index, distance = nearest_windows(queries, train)
    copies = train[index]
    result = {"hit_f1": round(f1_from_counts(*f1_counts(queries, copies)), 4),
              "instrument_f1": per_instrument_f1(queries, copies),
              "query_hamming_to_nearest_train": round(float(distance.mean()), 2),
              "train_windows": len(train)}
    if model_guess is not None:
        copy_wins = window_f1(queries, copies) > window_f1(queries, model_guess)
        result["beats_model_share"] = round(float(copy_wins.mean()), 4)
        result["model_hamming_to_nearest_train"] = round(float(nearest_windows(model_guess, train)[1].mean()), 2)
    return result


def window_f1(truth: np.ndarray, guess: np.ndarray) -> np.ndarray:
    """Per-window hit F1 [N] (1.0 for two empty windows)."""
    tp = (truth & guess).sum(axis=(1, 2))
    total = truth.sum(axis=(1, 2)) + guess.sum(axis=(1, 2))
    return np.where(total > 0, 2 * tp / np.maximum(total, 1), 1.0)


def _longest_run(hits: np.ndarray) -> np.ndarray:
    """hits [N, steps, 9] -> longest run of consecutive hits per window and class [N, 9]."""
    run = np.zeros(hits.shape[::2], np.int64)
    best = np.zeros_like(run)
    for t in range(hits.shape[1]):
        run = np.where(hits[:, t], run + 1, 0)
        best = np.maximum(best, run)
    return best


def degenerate_mask(hits: np.ndarray, densest: int) -> dict[str, np.ndarray]:
    """The reasons a window is degenerate (see the module docstring), each a [N] bool mask."""
    totals = hits.sum(axis=(1, 2))
    runs = _longest_run(hits)
    runs[:, list(TIMEKEEPERS)] = 0
    bars = hits.reshape(len(hits), -1, STEPS_PER_BAR, hits.shape[-1])
    no_backbeat = ~(bars[..., KICK].any(-1) | bars[..., SNARE].any(-1))
    reasons = {
        "empty": totals == 0,
        "saturated": totals > densest,
        "endless_roll": runs.max(1) >= ROLL_STEPS,
        "bars_without_kick_and_snare": no_backbeat.sum(1) >= 2,
    }
    reasons["any"] = np.logical_or.reduce(list(reasons.values()))
    return reasons


def bar_repetition(hits: np.ndarray) -> float:
    """Mean Jaccard of bar 1 with bars 2 and 3 (two empty bars count as identical)."""
    bars = hits.reshape(len(hits), -1, STEPS_PER_BAR * hits.shape[-1])
    scores = []
    for other in (1, 2):
        inter = (bars[:, 0] & bars[:, other]).sum(1)
        union = (bars[:, 0] | bars[:, other]).sum(1)
        scores.append(np.where(union > 0, inter / np.maximum(union, 1), 1.0))
    return float(np.mean(scores))


def musicality(hits: np.ndarray, densest: int) -> dict:
    reasons = degenerate_mask(hits, densest)
    return {"degenerate_share": round(float(reasons["any"].mean()), 4),
            "degenerate_reasons": {k: round(float(v.mean()), 4) for k, v in reasons.items() if k != "any"},
            "bar_repetition_jaccard": round(bar_repetition(hits), 4)}
