"""What a drummer sees in a groove: playability and musical-sense figures, and the playable-token rule.

Pure numpy on hit grids ``[N, steps, 9]`` (bool) or tokens; nothing here knows a model or MIDI.

**Hands and feet** (the rule behind ``hands_needed`` and playable decoding).  A drummer has two feet
and two hands.  The feet play the kick and the hi-hat pedal.  GMD's pedal hi-hat (GM pitch 44) maps
to the *closed hi-hat* class in the 9-class mapping (``musicvae.pattern.DRUM_CLASSES``), so a closed
hi-hat may always be a foot: it never needs a hand.  Every other class needs one hand per stroke:
snare, open hi-hat, the three toms, crash and ride (``HAND_CLASSES``).  A step needs
``hands_needed`` = the number of hand classes it strikes; a step needing three or more is one no
drummer plays.  Checked on GMD (``docs/models.md`` has the table): 596 of the 846,912 training
steps (0.07%) break it, in 2.9% of training windows (windows overlap: one step sits in up to four),
1.1% of test windows; no GMD step needs more than four hands.

Figures (``drummer_figures``), per window set:
- ``three_hand_windows`` / ``three_hand_steps``: share of windows with a step needing 3+ hands, and of steps;
- ``timekeeper_bars``: share of bars with 4 or more hi-hat (closed or open) or ride hits;
- ``longest_roll``: mean over windows of the longest run of consecutive steps one non-timekeeper drum
  (kick, snare, a tom, crash) is struck on, and ``roll_bar_windows``: share with such a run of 16+ steps;
- ``drums_used`` (mean number of the 9 classes a window uses) and ``seven_drum_windows`` (7 or more);
- ``bar_coherence``: mean Jaccard index of consecutive bars' hits (1-2, 2-3, 3-4; two empty bars = 1);
- ``memorised`` (with a training set): share of windows within ``MEMORISED_CELLS`` cells (Hamming) of a
  training window.
``two_sample_accuracy``: cross-validated accuracy of a logistic classifier telling two window sets
apart on ``rhythm_features`` (0.5 = indistinguishable); read it against the real-vs-real (train vs
test) baseline, since GMD's own splits differ (different sessions).
"""

from __future__ import annotations

import numpy as np

from musicvae.evaluation.quality import _longest_run, nearest_windows
from musicvae.pattern import CLASS_NAMES, NUM_CLASSES, NUM_TOKENS, STEPS_PER_BAR, hits_from_tokens

FOOT_CLASSES = tuple(CLASS_NAMES.index(n) for n in ("kick", "closed hi-hat"))
HAND_CLASSES = tuple(c for c in range(NUM_CLASSES) if c not in FOOT_CLASSES)
HANDS = 2
TIMEKEEPER_CLASSES = tuple(CLASS_NAMES.index(n) for n in ("closed hi-hat", "open hi-hat", "ride"))
TIMEKEEPER_HITS = 4  # per bar: a hat or ride on at least every quarter note
ROLL_CLASSES = tuple(c for c in range(NUM_CLASSES) if c not in TIMEKEEPER_CLASSES)
MEMORISED_CELLS = 4


def hands_needed(hits: np.ndarray) -> np.ndarray:
    """hits [..., 9] -> [...] how many hands the step needs (the feet take kick and hi-hat pedal)."""
    return np.asarray(hits, dtype=bool)[..., list(HAND_CLASSES)].sum(-1)


def playable_tokens(hands: int = HANDS) -> np.ndarray:
    """[512] bool: which tokens a drummer with ``hands`` hands can play (116 of 512 for two)."""
    return hands_needed(hits_from_tokens(np.arange(NUM_TOKENS))) <= hands


def playable_logit_mask(admit: np.ndarray | None = None, hands: int = HANDS) -> np.ndarray:
    """[512] float32 additive logit mask: 0 for a playable token, -inf for one that is not.

    ``admit``: tokens always allowed (a user's own groove's tokens), so that decoding a real groove
    never refuses a step it contains."""
    allowed = playable_tokens(hands)
    if admit is not None:
        allowed[np.unique(np.asarray(admit, dtype=np.int64))] = True
    return np.where(allowed, 0.0, -np.inf).astype(np.float32)


def _bars(hits: np.ndarray) -> np.ndarray:
    return hits.reshape(len(hits), -1, STEPS_PER_BAR, hits.shape[-1])


def timekeeper_bars(hits: np.ndarray) -> np.ndarray:
    """[N, bars] bool: the bar has 4 or more hi-hat or ride hits."""
    return _bars(hits)[..., list(TIMEKEEPER_CLASSES)].sum(axis=(-1, -2)) >= TIMEKEEPER_HITS


def longest_roll(hits: np.ndarray) -> np.ndarray:
    """[N]: longest run of consecutive steps on which one non-timekeeper drum is struck."""
    return _longest_run(hits)[:, list(ROLL_CLASSES)].max(1)


def bar_coherence(hits: np.ndarray) -> np.ndarray:
    """[N]: mean Jaccard index of each bar's hits with the next bar's."""
    bars = _bars(hits).reshape(len(hits), -1, STEPS_PER_BAR * hits.shape[-1])
    inter = (bars[:, :-1] & bars[:, 1:]).sum(-1)
    union = (bars[:, :-1] | bars[:, 1:]).sum(-1)
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0).mean(1)


def memorised(hits: np.ndarray, train: np.ndarray, cells: int = MEMORISED_CELLS) -> np.ndarray:
    """[N] bool: the window is within ``cells`` cells of some training window."""
    return nearest_windows(hits, train)[1] <= cells


def drummer_figures(hits: np.ndarray, train: np.ndarray | None = None) -> dict:
    """The figures of the module docstring for one set of windows [N, steps, 9]."""
    hits = np.asarray(hits, dtype=bool)
    hands = hands_needed(hits)
    used = hits.any(1).sum(1)
    roll = longest_roll(hits)
    out = {
        "windows": len(hits),
        "three_hand_windows": round(float((hands > HANDS).any(1).mean()), 4),
        "three_hand_steps": round(float((hands > HANDS).mean()), 5),
        "timekeeper_bars": round(float(timekeeper_bars(hits).mean()), 4),
        "longest_roll": round(float(roll.mean()), 2),
        "roll_bar_windows": round(float((roll >= STEPS_PER_BAR).mean()), 4),
        "drums_used": round(float(used.mean()), 2),
        "seven_drum_windows": round(float((used >= 7).mean()), 4),
        "bar_coherence": round(float(bar_coherence(hits).mean()), 4),
    }
    if train is not None:
        out["memorised"] = round(float(memorised(hits, train).mean()), 4)
    return out


def rhythm_features(hits: np.ndarray) -> np.ndarray:
    """[N, 9 + 16 + 9 + 6] simple per-window features for the two-sample classifier: hits per bar of each
    drum, onsets per step position in the bar, whether each drum is used, and total density, most hands
    in a step, timekeeper bars, longest roll, bar coherence, off-beat share."""
    hits = np.asarray(hits, dtype=bool)
    bars = _bars(hits)
    num_bars = bars.shape[1]
    per_drum = hits.sum(1) / num_bars
    per_position = bars.any(-1).sum(1) / num_bars  # [N, 16]
    total = hits.sum((1, 2))
    offbeat = bars[:, :, 1::2].sum((1, 2, 3)) / np.maximum(total, 1)
    extra = np.stack([total / num_bars, hands_needed(hits).max(1), timekeeper_bars(hits).mean(1),
                      longest_roll(hits), bar_coherence(hits), offbeat], axis=1)
    return np.concatenate([per_drum, per_position, hits.any(1), extra], axis=1).astype(np.float64)


def _fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, iterations: int = 25) -> np.ndarray:
    """Newton's method for L2-regularised logistic regression; x has a bias column last."""
    w = np.zeros(x.shape[1])
    penalty = np.full(x.shape[1], l2)
    penalty[-1] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -30, 30)))
        grad = x.T @ (p - y) + penalty * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-6:
            break
    return w


def two_sample_accuracy(a: np.ndarray, b: np.ndarray, folds: int = 5, seed: int = 0) -> float:
    """Cross-validated accuracy of a logistic classifier telling windows ``a`` from ``b`` (0.5 = alike).

    The larger set is subsampled to the smaller's size, so that guessing scores 0.5."""
    rng = np.random.default_rng(seed)
    n = min(len(a), len(b))
    fa, fb = (rhythm_features(s[rng.choice(len(s), n, replace=False)]) for s in (a, b))
    x, y = np.concatenate([fa, fb]), np.concatenate([np.zeros(n), np.ones(n)])
    order = rng.permutation(len(y))
    x, y = x[order], y[order]
    correct = 0
    for fold in np.array_split(np.arange(len(y)), folds):
        train = np.setdiff1d(np.arange(len(y)), fold)
        mean, std = x[train].mean(0), x[train].std(0) + 1e-9
        with_bias = np.concatenate([(x - mean) / std, np.ones((len(y), 1))], axis=1)
        w = _fit_logistic(with_bias[train], y[train])
        correct += int(((with_bias[fold] @ w > 0) == (y[fold] > 0.5)).sum())
    return round(correct / len(y), 4)


def drummer_table(drummer: dict) -> list[str]:
    """The markdown table of one report's ``drummer`` figures (model cards and the README use it)."""
    rows = [("train windows", drummer["train_windows"], None),
            ("test windows", drummer["reference_windows"], drummer["reference_windows"]["classifier_vs_train"])]
    rows += [(f"samples {key}", drummer[key], drummer[key]["classifier_vs_reference"])
             for key in ("T0.5", "T0.5 playable", "T1.0", "T1.0 playable") if key in drummer]
    lines = ["| windows | 3-hand windows | timekeeper bars | longest roll (16+ steps) | drums used (7+) "
             "| bar coherence | memorised | classifier vs test |", "|---|---|---|---|---|---|---|---|"]
    for label, f, classifier in rows:
        memo = f"{f['memorised']:.1%}" if "memorised" in f else "—"
        acc = "—" if classifier is None else f"{classifier:.2f}"
        lines.append(f"| {label} | {f['three_hand_windows']:.1%} | {f['timekeeper_bars']:.1%} | "
                     f"{f['longest_roll']:.1f} ({f['roll_bar_windows']:.1%}) | {f['drums_used']:.1f} "
                     f"({f['seven_drum_windows']:.1%}) | {f['bar_coherence']:.2f} | {memo} | {acc} |")
    return lines
