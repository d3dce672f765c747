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
