"""Evaluation of a model on token windows: the figures of ``musicvae train --mode eval``, of the periodic
validation during training, and of the model card (``musicvae report``).
"""

from __future__ import annotations

import numpy as np
import torch

from musicvae.evaluation.quality import f1_from_counts
from musicvae.model.network import MusicVAE
from musicvae.model.objective import compute_loss
from musicvae.pattern import CLASS_NAMES, NUM_CLASSES, hits_from_tokens, roll_tensor


@torch.inference_mode()
def evaluate(model: MusicVAE, tokens: np.ndarray, batch_size: int = 256, step: int = 10**9, seed: int = 0,
             greedy_out: list | None = None) -> dict:
    """Metrics over every window (no remainder dropped).

    - ``accuracy``: teacher-forced per-step token accuracy (Magenta's metrics/accuracy);
    - ``sampled_accuracy``: free-running, z ~ q(z|x), each next input sampled at T=1; stricter than
      Magenta's eval with sampling_rate=1: each bar starts from the *sampled* last token of the
      previous bar, where Magenta gives each bar its ground-truth slice;
    - ``hit_precision/recall/f1``: per (step, instrument) hits of the greedy (T=0) decode of mu,
      what a user sees as a reconstruction; silence cannot inflate it (``instrument_f1``: per class);
    - ``distinct_reconstructions``: how many different greedy reconstructions (a decoder that
      ignores z gives 1).

    ``greedy_out``: if given, the greedy reconstructions' tokens are appended to it, batch by batch.
    """
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    totals: dict[str, float] = {}
    segments = np.zeros(model.num_segments)
    true_pos, false_pos, false_neg = (np.zeros(NUM_CLASSES, np.int64) for _ in range(3))
    distinct: set[bytes] = set()
    mu_norms: list[np.ndarray] = []
    count = 0
    for lo in range(0, len(tokens), batch_size):
        batch = torch.from_numpy(tokens[lo : lo + batch_size].astype(np.int64)).to(device)
        n = batch.shape[0]
        out = compute_loss(model, batch, step, generator)
        mu, sigma = model.encode(roll_tensor(batch))
        z = mu + sigma * torch.randn(mu.shape, generator=generator, device=device)
        sampled_logits, _ = model.free_run(z, 1.0, generator)
        _, greedy = model.free_run(mu, 0.0)
        mu_norms.append(mu.norm(dim=1).cpu().numpy())
        for key in ("loss", "losses/r_loss", "losses/kl_bits"):
            totals[key] = totals.get(key, 0.0) + float(out[key]) * n
        totals["accuracy"] = totals.get("accuracy", 0.0) + float(out["metrics/accuracy"]) * n
        sampled_acc = (sampled_logits.argmax(-1) == batch).float().mean()
        totals["sampled_accuracy"] = totals.get("sampled_accuracy", 0.0) + float(sampled_acc) * n
        segments += out["segment_accuracy"].cpu().numpy() * n
        batch, greedy = batch.cpu(), greedy.cpu()
        truth = hits_from_tokens(batch.numpy())
        guess = hits_from_tokens(greedy.numpy())
        true_pos += (truth & guess).sum(axis=(0, 1))
        false_pos += (~truth & guess).sum(axis=(0, 1))
        false_neg += (truth & ~guess).sum(axis=(0, 1))
        if greedy_out is not None:
            greedy_out.append(greedy.numpy())
        distinct.update(row.tobytes() for row in greedy.numpy().astype(np.uint16))
        count += n
    tp, fp, fn = int(true_pos.sum()), int(false_pos.sum()), int(false_neg.sum())
    precision = tp / max(tp + fp, 1)
    recall = tp / max(tp + fn, 1)
    result = {
        "examples": count,
        "loss": totals["loss"] / count,
        "r_loss": totals["losses/r_loss"] / count,
        "kl_bits": totals["losses/kl_bits"] / count,
        "accuracy": totals["accuracy"] / count,
        "sampled_accuracy": totals["sampled_accuracy"] / count,
        "segment_accuracy": [round(float(a), 4) for a in segments / count],
        "hit_precision": precision,
        "hit_recall": recall,
        "hit_f1": 2 * precision * recall / max(precision + recall, 1e-12),
        "instrument_f1": {name: round(f1_from_counts(int(t), int(p), int(n)), 4)
                          for name, t, p, n in zip(CLASS_NAMES, true_pos, false_pos, false_neg)},
        "distinct_reconstructions": len(distinct),
        "num_instruments": NUM_CLASSES,
        # where the encoder puts these windows: refined encodings are kept inside the p99 ball
        "mu_norm_p50": round(float(np.percentile(np.concatenate(mu_norms), 50)), 3),
        "mu_norm_p99": round(float(np.percentile(np.concatenate(mu_norms), 99)), 3),
    }
    return result


@torch.inference_mode()
def evaluate_grooves(model, frames: np.ndarray, batch_size: int = 256, step: int = 10**9, seed: int = 0,
                     qpm: np.ndarray | None = None, decoded_out: list | None = None) -> dict:
    """A groove model on frames [N, T, 27]: the teacher-forced losses, and what a user hears.

    The decode is deterministic: mu, hits at temperature 0 (or the input's hits for a model that reads them
    as controls), velocities and offsets as predicted.  ``velocity_mae`` (MIDI units) and ``offset_mae``
    (steps; ``timing_mae_ms`` when ``qpm`` [N] is given) are measured on the cells hit in both the input
    and the decode; ``hit_f1`` compares the decode's hits with the input's.  ``decoded_out`` collects the
    decoded frames.
    """
    from musicvae.model.groove import HITS, OFFSETS, VELOCITIES

    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    sums: dict[str, float] = {}
    tp = fp = fn = 0
    vel_err = off_err = ms_err = 0.0
    cells = 0
    for lo in range(0, len(frames), batch_size):
        batch = torch.from_numpy(np.asarray(frames[lo : lo + batch_size], dtype=np.float32)).to(device)
        n = batch.shape[0]
        out = compute_loss(model, batch, step, generator)
        for key in ("loss", "losses/r_loss", "losses/kl_bits", "metrics/hits_loss", "metrics/velocities_loss",
                    "metrics/offsets_loss"):
            sums[key] = sums.get(key, 0.0) + float(out[key]) * n
        mu, _ = model.encode_frames(batch)
        _, decoded = model.free_run_frames(mu, 0.0, hits=batch[..., HITS])
        if decoded_out is not None:
            decoded_out.append(decoded.cpu().numpy())
        truth, guess = batch[..., HITS] > 0.5, decoded[..., HITS] > 0.5
        tp += int((truth & guess).sum())
        fp += int((~truth & guess).sum())
        fn += int((truth & ~guess).sum())
        both = truth & guess
        cells += int(both.sum())
        vel_err += float(((decoded[..., VELOCITIES] - batch[..., VELOCITIES]).abs() * 127.0)[both].sum())
        off_steps = (decoded[..., OFFSETS] - batch[..., OFFSETS]).abs() / 2.0
        off_err += float(off_steps[both].sum())
        if qpm is not None:
            step_ms = torch.as_tensor(60000.0 / 4.0 / np.asarray(qpm[lo : lo + n], dtype=np.float32))
            ms_err += float((off_steps * step_ms[:, None, None].to(device))[both].sum())
    count = len(frames)
    result = {
        "examples": count,
        "loss": sums["loss"] / count,
        "r_loss": sums["losses/r_loss"] / count,
        "kl_bits": sums["losses/kl_bits"] / count,
        "hits_loss": sums["metrics/hits_loss"] / count,
        "velocities_loss": sums["metrics/velocities_loss"] / count,
        "offsets_loss": sums["metrics/offsets_loss"] / count,
        "hit_f1": f1_from_counts(tp, fp, fn),
        "velocity_mae": vel_err / max(cells, 1),
        "offset_mae_steps": off_err / max(cells, 1),
    }
    if qpm is not None:
        result["timing_mae_ms"] = ms_err / max(cells, 1)
    return result
