"""How well a humanize model plays quantized grooves: its figures against the real performances and
against the baselines a musician would try first (``musicvae report`` on a groove model).

Every method answers the same question: given a split's windows *quantized* (hits only), what velocity
and timing offset does each hit get?  Scores compare the answers with what the drummer played, on the
hit cells:
- ``velocity_mae``: mean |velocity error| in MIDI units (1..127);
- ``timing_mae_ms``: mean |onset error| in milliseconds at each window's own tempo;
- ``hit_f1``: the method's hits against the input's (a humanizer must not add or drop notes);
- ``velocity_std``: the spread of the velocities it plays (the real spread is reported beside it:
  a method can win on MAE by playing everything at the mean, and sound flat);
- ``swing``: the mean offset (in 16ths, positive = late) of the off-beat 16ths (odd steps) on the
  windows where the drummer swung them (real mean >= ``SWING_MIN_OFFSET``), and on all windows.

Baselines (their statistics come from the training split only):
- ``constant``: every hit at the training mean velocity, on the grid;
- ``jitter``: random velocities and offsets drawn from normals with the training mean and spread;
- ``position_mean``: the training mean velocity and offset of each (instrument, 16th of the bar);
- ``nearest_neighbour``: the feel of the training window with the most similar hits (the hits both
  share take its velocities and offsets, the rest ``position_mean``): retrieval, as in GrooVAE's paper.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musicvae.data.storage import OFFSET_UNITS, Split
from musicvae.pattern import CLASS_NAMES, NUM_CLASSES, STEPS_PER_BAR

SWING_MIN_OFFSET = 0.1  # steps: a window swings when its odd 16ths sit at least this late on average
SWING_MIN_HITS = 8


@dataclass
class Feel:
    """Velocities [N, T, 9] (MIDI units) and offsets [N, T, 9] (steps) on given hits [N, T, 9]."""

    hits: np.ndarray
    velocities: np.ndarray
    offsets: np.ndarray


def real_feel(split: Split, rows=slice(None)) -> Feel:
    hits = split.groove_frames(rows)[..., :NUM_CLASSES] > 0.5
    return Feel(hits, split.velocities[rows].astype(np.float32), split.offsets[rows].astype(np.float32) / OFFSET_UNITS)


@dataclass
class TrainingStats:
    velocity_mean: float
    velocity_std: float
    offset_mean: float
    offset_std: float
    position_velocity: np.ndarray  # [16, 9]
    position_offset: np.ndarray  # [16, 9]

    @classmethod
    def of(cls, feel: Feel) -> TrainingStats:
        vel, off = feel.velocities[feel.hits], feel.offsets[feel.hits]
        steps = feel.hits.shape[1]
        position = np.arange(steps) % STEPS_PER_BAR
        by_pos_vel = np.zeros((STEPS_PER_BAR, NUM_CLASSES))
        by_pos_off = np.zeros((STEPS_PER_BAR, NUM_CLASSES))
        for p in range(STEPS_PER_BAR):
            hits = feel.hits[:, position == p]
            count = hits.sum(axis=(0, 1))
            by_pos_vel[p] = np.where(count > 0, (feel.velocities[:, position == p] * hits).sum(axis=(0, 1))
                                     / np.maximum(count, 1), vel.mean())
            by_pos_off[p] = np.where(count > 0, (feel.offsets[:, position == p] * hits).sum(axis=(0, 1))
                                     / np.maximum(count, 1), 0.0)
        return cls(float(vel.mean()), float(vel.std()), float(off.mean()), float(off.std()), by_pos_vel, by_pos_off)


def constant_baseline(hits: np.ndarray, stats: TrainingStats) -> Feel:
    return Feel(hits, np.where(hits, stats.velocity_mean, 0.0), np.zeros(hits.shape))


def jitter_baseline(hits: np.ndarray, stats: TrainingStats, seed: int = 0) -> Feel:
    rng = np.random.default_rng(seed)
    vel = np.clip(rng.normal(stats.velocity_mean, stats.velocity_std, hits.shape), 1, 127)
    off = np.clip(rng.normal(stats.offset_mean, stats.offset_std, hits.shape), -0.5, 0.5)
    return Feel(hits, np.where(hits, vel, 0.0), np.where(hits, off, 0.0))


def position_mean_baseline(hits: np.ndarray, stats: TrainingStats) -> Feel:
    position = np.arange(hits.shape[1]) % STEPS_PER_BAR
    vel = np.broadcast_to(stats.position_velocity[position], hits.shape)
    off = np.broadcast_to(stats.position_offset[position], hits.shape)
    return Feel(hits, np.where(hits, vel, 0.0), np.where(hits, off, 0.0))


def nearest_neighbour_baseline(hits: np.ndarray, train: Feel, stats: TrainingStats) -> Feel:
    """Each window takes the feel of the training window whose hits agree best (Dice = hit F1)."""
    flat = hits.reshape(len(hits), -1).astype(np.float32)
    bank = train.hits.reshape(len(train.hits), -1).astype(np.float32)
    fallback = position_mean_baseline(hits, stats)
    vel, off = fallback.velocities.copy(), fallback.offsets.copy()
    for lo in range(0, len(flat), 512):
        chunk = flat[lo : lo + 512]
        overlap = chunk @ bank.T
        dice = 2 * overlap / np.maximum(chunk.sum(1)[:, None] + bank.sum(1)[None], 1)
        best = dice.argmax(axis=1)
        shared = hits[lo : lo + 512] & train.hits[best]
        vel[lo : lo + 512] = np.where(shared, train.velocities[best], vel[lo : lo + 512])
        off[lo : lo + 512] = np.where(shared, train.offsets[best], off[lo : lo + 512])
    return Feel(hits, vel, off)


def score(truth: Feel, guess: Feel, qpm: np.ndarray) -> dict:
    """The module doc's figures for one method."""
    both = truth.hits & guess.hits
    step_ms = np.broadcast_to((60000.0 / 4.0 / np.asarray(qpm, dtype=np.float64))[:, None, None], both.shape)
    vel_err = np.abs(guess.velocities - truth.velocities)
    ms_err = np.abs(guess.offsets - truth.offsets) * step_ms
    tp = int(both.sum())
    result = {
        "velocity_mae": round(float(vel_err[both].mean()), 2),
        "timing_mae_ms": round(float(ms_err[both].mean()), 2),
        "hit_f1": round(2 * tp / max(int(truth.hits.sum()) + int(guess.hits.sum()), 1), 4),
        "velocity_std": round(float(guess.velocities[both].std()), 2),
        "median_abs_offset_ms": round(float(np.median(np.abs(guess.offsets[both]) * step_ms[both])), 2),
        "per_instrument": {
            name: {"velocity_mae": round(float(vel_err[..., c][both[..., c]].mean()), 2),
                   "timing_mae_ms": round(float(ms_err[..., c][both[..., c]].mean()), 2)}
            for c, name in enumerate(CLASS_NAMES) if both[..., c].any()
        },
    }
    result["swing"] = swing(truth, guess)
    return result


def swing_windows(truth: Feel) -> np.ndarray:
    """Windows where the drummer played the odd 16ths late on average (>= SWING_MIN_OFFSET steps)."""
    odd = truth.hits & (np.arange(truth.hits.shape[1]) % 2 == 1)[None, :, None]
    count = odd.sum(axis=(1, 2))
    mean = (truth.offsets * odd).sum(axis=(1, 2)) / np.maximum(count, 1)
    return (count >= SWING_MIN_HITS) & (mean >= SWING_MIN_OFFSET)


def swing(truth: Feel, guess: Feel) -> dict:
    """Mean offset (steps) of the off-beat 16ths the method plays, on swung windows and on all."""
    odd = truth.hits & guess.hits & (np.arange(truth.hits.shape[1]) % 2 == 1)[None, :, None]
    chosen = swing_windows(truth)

    def mean_offset(windows: np.ndarray) -> float:
        cells = odd & windows[:, None, None]
        return round(float(guess.offsets[cells].mean()), 4) if cells.any() else 0.0

    return {"swing_windows": int(chosen.sum()), "offbeat_offset_swing": mean_offset(chosen),
            "offbeat_offset_all": mean_offset(np.ones(len(chosen), dtype=bool))}


def humanize_feel(model, hits: np.ndarray, qpm: np.ndarray) -> Feel:
    """A humanize model (``musicvae.api.GrooveModel``) playing quantized windows (hits [N, T, 9])."""
    from musicvae.pattern import DrumPattern

    played = model.humanize([DrumPattern(h, qpm=float(q)) for h, q in zip(hits, qpm)])
    return Feel(np.stack([p.hits for p in played]), np.stack([p.velocity_grid() for p in played]).astype(np.float32),
                np.stack([p.offset_grid() for p in played]))


def humanize_probe(model, gmd_root) -> dict:
    """The CI regression guard's figure: velocity MAE of the humanized probe windows (deterministic)."""
    from pathlib import Path

    from musicvae.evaluation.report import PROBE_FILE, PROBE_WINDOWS
    from musicvae.midi.parse import file_windows

    windows = [w for _, w in file_windows((Path(gmd_root) / PROBE_FILE).read_bytes())[:PROBE_WINDOWS]]
    played = model.humanize([w.quantized() for w in windows])
    truth = np.stack([w.velocity_grid() for w in windows]).astype(np.float64)
    mask = np.stack([w.hits for w in windows])
    mae = float(np.abs(np.stack([p.velocity_grid() for p in played]) - truth)[mask].mean())
    return {"file": PROBE_FILE, "windows": len(windows), "velocity_mae": round(mae, 3)}


def humanize_report(checkpoint, data_dir, split: str = "test", seed: int = 0, train_subset: int = 1768,
                    gmd_root=None) -> dict:
    """The model card figures of a humanize model: the model and every baseline scored on ``split``, the
    same figures on a fixed training subset (the generalisation gap), and the teacher-forced losses."""
    import torch

    from musicvae.api import GrooveModel
    from musicvae.data.storage import load_split
    from musicvae.training.evaluation import evaluate_grooves

    model = GrooveModel.load(checkpoint)
    torch.manual_seed(seed)
    reference, train = load_split(data_dir, split), load_split(data_dir, "train")
    truth, train_feel = real_feel(reference), real_feel(train)
    stats = TrainingStats.of(train_feel)
    methods = {
        "model": humanize_feel(model, truth.hits, reference.qpm),
        "constant": constant_baseline(truth.hits, stats),
        "jitter": jitter_baseline(truth.hits, stats, seed),
        "position_mean": position_mean_baseline(truth.hits, stats),
        "nearest_neighbour": nearest_neighbour_baseline(truth.hits, train_feel, stats),
    }
    scores = {name: score(truth, feel, reference.qpm) for name, feel in methods.items()}
    subset = np.sort(np.random.default_rng(seed).choice(len(train), min(train_subset, len(train)), replace=False))
    train_truth = real_feel(train, subset)
    train_score = score(train_truth, humanize_feel(model, train_truth.hits, train.qpm[subset]), train.qpm[subset])
    losses = evaluate_grooves(model.model, reference.groove_frames(), seed=seed, qpm=reference.qpm)
    at_120 = methods["model"]
    distinct = [np.unique(at_120.velocities[i][at_120.hits[i]]).size for i in range(len(at_120.hits))]
    probe = {"regression_probe": humanize_probe(model, gmd_root)} if gmd_root is not None else {}
    return {
        **probe,
        "config": model.name, "step": model.meta["step"], "split": split, "windows": len(reference),
        "scores": scores,
        "real": {"velocity_std": round(float(truth.velocities[truth.hits].std()), 2),
                 "median_abs_offset_ms": score(truth, truth, reference.qpm)["median_abs_offset_ms"],
                 "swing": swing(truth, truth)},
        "train_subset": {"windows": len(subset), **{k: train_score[k] for k in ("velocity_mae", "timing_mae_ms")}},
        "generalisation_gap": {
            "velocity_mae_ratio": round(scores["model"]["velocity_mae"] / train_score["velocity_mae"], 3),
            "timing_mae_ratio": round(scores["model"]["timing_mae_ms"] / train_score["timing_mae_ms"], 3)},
        "losses": losses,
        "training_stats": {"velocity_mean": round(stats.velocity_mean, 2), "velocity_std": round(stats.velocity_std, 2),
                           "offset_mean_steps": round(stats.offset_mean, 4),
                           "offset_std_steps": round(stats.offset_std, 4)},
        "at_120_qpm": {"distinct_velocities_median": float(np.median(distinct)),
                       "median_abs_offset_ms": round(float(np.median(np.abs(at_120.offsets[at_120.hits]))) * 125.0, 2)},
    }
