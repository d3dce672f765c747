"""Model reports for model cards: reconstruction metrics on a split and prior-sample statistics.

``musicvae report`` writes the figures the issue asks a shipped model to carry (``metrics.json``;
``musicvae export``, in ``musicvae.training.checkpoint``, embeds them in a lean model folder).
Definitions used for prior samples (512 per temperature):
- *empty*: no hit at all;
- *saturated*: more hits than the densest window of the reference split (data-relative, so a
  busy but real-sounding groove is never called saturated);
- *overlap*: histogram overlap sum_i min(p_i, q_i) (1 = same distribution) of hits per bar, and of
  each instrument's hits per bar, between samples and the reference windows;
- *degenerate* and *bar repetition*: see ``musicvae.evaluation.quality`` (the reference split's own figures
  are reported beside the samples').
- *drummer figures* (``drummer``): what a drummer sees, ``musicvae.evaluation.playability``, for a
  subset of training windows, the reference windows and 512 samples per temperature, with and without
  playable decoding; the classifier accuracy of samples against the reference windows sits next to the
  real-vs-real one (training windows against the reference windows).
The generalisation gap is the same reconstruction metrics on a fixed subset of training windows
(``TRAIN_SUBSET`` windows, seed 0), and the retrieval baseline answers every window with its
nearest training window.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from musicvae.api import TrainedModel
from musicvae.data.storage import load_split
from musicvae.evaluation.playability import drummer_figures, two_sample_accuracy
from musicvae.evaluation.quality import musicality, retrieval_baseline
from musicvae.pattern import CLASS_NAMES, STEPS_PER_BAR, hits_from_tokens
from musicvae.training.evaluation import evaluate

TRAIN_SUBSET = 1768  # as many windows as GMD's test split


def histogram_overlap(a: np.ndarray, b: np.ndarray, bins: np.ndarray) -> float:
    pa, _ = np.histogram(a, bins=bins)
    pb, _ = np.histogram(b, bins=bins)
    pa = pa / max(pa.sum(), 1)
    pb = pb / max(pb.sum(), 1)
    return float(np.minimum(pa, pb).sum())


def density_stats(hits: np.ndarray) -> dict:
    """hits [N, steps, 9] -> hits per bar per window, overall and per instrument."""
    bars = hits.shape[1] / STEPS_PER_BAR
    return {"per_bar": hits.sum(axis=(1, 2)) / bars, "per_instrument": hits.sum(axis=1) / bars}


def prior_sample_report(model: TrainedModel, reference_hits: np.ndarray, n: int = 512, seed: int = 0) -> dict:
    ref = density_stats(reference_hits)
    densest = int(reference_hits.sum(axis=(1, 2)).max())
    bins = np.arange(0, 64 * 9 / 4 + 2, 2.0)
    result = {}
    for temperature in (0.5, 1.0):
        patterns = model.sample(n, temperature, seed=seed)
        hits = np.stack([p.hits for p in patterns])
        stats = density_stats(hits)
        totals = hits.sum(axis=(1, 2))
        result[f"T{temperature}"] = {
            **musicality(hits, densest),
            "empty_share": float((totals == 0).mean()),
            "saturated_share": float((totals > densest).mean()),
            "usable_share": float(((totals > 0) & (totals <= densest)).mean()),
            "hits_per_bar_mean": float(stats["per_bar"].mean()),
            "hits_per_bar_overlap": histogram_overlap(stats["per_bar"], ref["per_bar"], bins),
            "instrument_hits_per_bar": {
                name: round(float(stats["per_instrument"][:, i].mean()), 3) for i, name in enumerate(CLASS_NAMES)
            },
            "instrument_overlap": {
                name: round(histogram_overlap(stats["per_instrument"][:, i], ref["per_instrument"][:, i],
                                              np.arange(0, 17.5, 0.5)), 3)
                for i, name in enumerate(CLASS_NAMES)
            },
        }
    result["reference"] = {
        **musicality(reference_hits, densest),
        "hits_per_bar_mean": float(ref["per_bar"].mean()),
        "densest_window_hits": densest,
        "instrument_hits_per_bar": {
            name: round(float(ref["per_instrument"][:, i].mean()), 3) for i, name in enumerate(CLASS_NAMES)
        },
    }
    return result


def drummer_report(model: TrainedModel, reference_hits: np.ndarray, train_hits: np.ndarray, n: int = 512,
                   seed: int = 0) -> dict:
    """Drummer figures of real windows and of prior samples, plain and playable (see the module doc)."""
    rng = np.random.default_rng(seed)
    train_subset = train_hits[np.sort(rng.choice(len(train_hits), min(n, len(train_hits)), replace=False))]
    real_vs_real = two_sample_accuracy(train_subset, reference_hits, seed=seed)
    result = {"train_windows": drummer_figures(train_subset),
              "reference_windows": {**drummer_figures(reference_hits, train_hits), "classifier_vs_train": real_vs_real}}
    for temperature in (0.5, 1.0):
        for playable in (False, True):
            patterns = model.sample(n, temperature, seed=seed, playable=playable)
            hits = np.stack([p.hits for p in patterns])
            result[f"T{temperature}{' playable' if playable else ''}"] = {
                **drummer_figures(hits, train_hits),
                "classifier_vs_reference": two_sample_accuracy(hits, reference_hits, seed=seed)}
    return result


# A fixed probe for the CI regression guard: the first windows of one GMD test groove.
PROBE_FILE = "drummer1/eval_session/1_funk-groove1_138_beat_4-4.mid"
PROBE_WINDOWS = 8


def regression_probe(model: TrainedModel, gmd_root: Path) -> dict:
    """Greedy reconstruction accuracy and hit F1 of the probe windows (deterministic)."""
    from musicvae.midi.parse import file_windows

    windows = [w for _, w in file_windows((Path(gmd_root) / PROBE_FILE).read_bytes())[:PROBE_WINDOWS]]
    _, mu, _ = model.encode(windows)
    decoded = model.decode(mu, temperature=0.0)
    truth = np.stack([w.hits for w in windows])
    guess = np.stack([p.hits for p in decoded])
    tp = int((truth & guess).sum())
    f1 = 2 * tp / max(int(truth.sum()) + int(guess.sum()), 1)
    accuracy = float(np.mean([(w.to_tokens() == p.to_tokens()).mean() for w, p in zip(windows, decoded)]))
    return {"file": PROBE_FILE, "windows": len(windows), "accuracy": accuracy, "hit_f1": f1}


def model_report(checkpoint: Path, data_dir: Path, split: str = "test", samples: int = 512, seed: int = 0,
                 gmd_root: Path | None = None) -> dict:
    model = TrainedModel.load(checkpoint)
    tokens = load_split(data_dir, split).tokens
    train_tokens = load_split(data_dir, "train").tokens
    torch.manual_seed(seed)
    greedy: list[np.ndarray] = []
    reconstruction = evaluate(model.model, tokens, batch_size=256, seed=seed, greedy_out=greedy)
    subset = np.random.default_rng(seed).choice(len(train_tokens), min(TRAIN_SUBSET, len(train_tokens)), replace=False)
    train_fit = evaluate(model.model, train_tokens[np.sort(subset)], batch_size=256, seed=seed)
    truth = hits_from_tokens(tokens.astype(np.int64))
    train_hits = hits_from_tokens(train_tokens.astype(np.int64))
    retrieval = retrieval_baseline(truth, train_hits, hits_from_tokens(np.concatenate(greedy).astype(np.int64)))
    priors = prior_sample_report(model, truth, samples, seed)
    result = {"config": model.name, "step": model.meta["step"], "split": split,
              "reconstruction": reconstruction, "train_subset": train_fit,
              "generalisation_gap": {"r_loss_ratio": round(reconstruction["r_loss"] / train_fit["r_loss"], 3),
                                     "hit_f1_drop": round(train_fit["hit_f1"] - reconstruction["hit_f1"], 4)},
              "retrieval_baseline": retrieval, "prior_samples": priors,
              "drummer": drummer_report(model, truth, train_hits, samples, seed)}
    if gmd_root is not None:
        result["regression_probe"] = regression_probe(model, gmd_root)
    return result
