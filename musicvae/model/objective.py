"""The training objective (spec §2.6): reconstruction + beta * hinged KL, and its schedules.

``compute_loss`` is what training optimises and what evaluation reports; the schedules (beta, the
learning rate, scheduled sampling) are plain functions of the step.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from musicvae.configs import HParams
from musicvae.model.network import MusicVAE
from musicvae.pattern import NUM_TOKENS, roll_tensor


def sampling_probability(hp: HParams, step: int) -> float:
    rate = hp.sampling_rate
    if hp.sampling_schedule == "constant":
        return rate
    if hp.sampling_schedule == "inverse_sigmoid":
        return 1.0 - rate / (rate + math.exp(min(step / rate, 700.0)))
    if hp.sampling_schedule == "exponential":
        return 1.0 - rate**step
    raise ValueError(f"unknown sampling_schedule {hp.sampling_schedule!r}")


def beta_at(hp: HParams, step: int) -> float:
    return (1.0 - hp.beta_rate**step) * hp.max_beta  # 0**0 == 1: beta is 0 at step 0 only


def learning_rate_at(hp: HParams, step: int) -> float:
    """Magenta's exponential decay, or a cosine to ``min_learning_rate`` made for a finite budget."""
    if step < hp.warmup_steps:
        return hp.learning_rate * (step + 1) / hp.warmup_steps
    if hp.lr_schedule == "cosine":
        progress = min((step - hp.warmup_steps) / max(hp.lr_total_steps - hp.warmup_steps, 1), 1.0)
        span = hp.learning_rate - hp.min_learning_rate
        return hp.min_learning_rate + 0.5 * span * (1 + math.cos(math.pi * progress))
    return (hp.learning_rate - hp.min_learning_rate) * hp.decay_rate**step + hp.min_learning_rate


def kl_divergence(mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Per-example KL(q || N(0, I)) summed over z, in nats.  log sigma is clamped for safety."""
    log_sigma = torch.log(sigma.clamp_min(1e-8))
    return (-log_sigma + 0.5 * (sigma**2 + mu**2) - 0.5).sum(dim=-1)


def compute_loss(model: MusicVAE, tokens: torch.Tensor, step: int, generator=None,
                 encoder_tokens: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Loss and metrics for a batch of target tokens [B, T] (groove models: frames [B, T, 27]).

    ``encoder_tokens``: what the encoder sees, when it differs from the targets (denoising).
    """
    hp = model.hp
    if hp.output == "groove":
        return compute_groove_loss(model, tokens, step, generator)
    roll = roll_tensor(tokens if encoder_tokens is None else encoder_tokens)
    mu, sigma = model.encode(roll)
    z = mu + sigma * torch.randn(mu.shape, generator=generator, device=mu.device)
    # Evaluation is teacher-forced whatever the schedule: free-running figures come from free_run.
    p = sampling_probability(hp, step) if model.training else 0.0
    if p > 0:
        logits, _ = model.free_run(z, 1.0, generator, teacher_tokens=tokens, sampling_prob=p)
    else:
        logits = model.decode_logits(z, tokens)
    r_loss = F.cross_entropy(logits.reshape(-1, NUM_TOKENS), tokens.reshape(-1), reduction="none")
    r_loss = r_loss.view(tokens.shape).sum(dim=1)  # summed over time, not averaged (pitfall 2)
    kl = kl_divergence(mu, sigma)
    free_nats = hp.free_bits * math.log(2.0)
    kl_cost = (kl - free_nats).clamp_min(0.0)  # hinge on each example's total KL (pitfall 1)
    beta = beta_at(hp, step)
    loss = r_loss.mean() + beta * kl_cost.mean()
    correct = (logits.argmax(-1) == tokens).float()
    return {
        "loss": loss,  # the only entry with a graph; the rest are detached
        "losses/r_loss": r_loss.mean().detach(),
        "losses/kl_loss": kl_cost.mean().detach(),
        "losses/kl_bits": (kl.mean() / math.log(2.0)).detach(),
        "losses/kl_beta": torch.tensor(beta),
        "metrics/accuracy": correct.mean().detach(),
        "segment_accuracy": correct.view(tokens.shape[0], model.num_segments, -1).mean(dim=(0, 2)).detach(),
    }


def _hinged_kl(hp: HParams, mu: torch.Tensor, sigma: torch.Tensor, step: int):
    kl = kl_divergence(mu, sigma)
    kl_cost = (kl - hp.free_bits * math.log(2.0)).clamp_min(0.0)
    return kl, kl_cost, beta_at(hp, step)


def compute_groove_loss(model, frames: torch.Tensor, step: int, generator=None) -> dict[str, torch.Tensor]:
    """GrooVAE's loss (spec §2.5) for target frames [B, T, 27]: per step, summed over the 9 drums, the hits'
    log loss plus the squared errors of velocities and offsets (on every cell: silent ones have target 0),
    summed over time; plus beta * hinged KL as for the categorical model.

    The hit term is computed from logits (``binary_cross_entropy_with_logits``), the numerically safe form of
    Magenta's log loss on sigmoid probabilities with eps 1e-7; the two agree wherever that eps does not bite.
    """
    from musicvae.model.groove import HITS, OFFSETS, VELOCITIES, split_outputs

    hp = model.hp
    frames = frames.float()
    mu, sigma = model.encode_frames(frames)
    z = mu + sigma * torch.randn(mu.shape, generator=generator, device=mu.device)
    outputs = model.decode_outputs(z, frames).float()
    logits, velocities, offsets = split_outputs(outputs)
    hits_t = frames[..., HITS]
    if hp.hits_as_controls:  # the decoder knows which cells sound: silent ones are exactly 0 (groove.py)
        velocities, offsets = velocities * hits_t, offsets * hits_t
    hits_loss = F.binary_cross_entropy_with_logits(logits, hits_t, reduction="none").sum(-1)  # [B, T]
    velocities_loss = ((velocities - frames[..., VELOCITIES]) ** 2).sum(-1)
    offsets_loss = ((offsets - frames[..., OFFSETS]) ** 2).sum(-1)
    r_loss = (hits_loss + velocities_loss + offsets_loss).sum(dim=1)
    kl, kl_cost, beta = _hinged_kl(hp, mu, sigma, step)
    loss = r_loss.mean() + beta * kl_cost.mean()
    return {
        "loss": loss,
        "losses/r_loss": r_loss.mean().detach(),
        "losses/kl_loss": kl_cost.mean().detach(),
        "losses/kl_bits": (kl.mean() / math.log(2.0)).detach(),
        "losses/kl_beta": torch.tensor(beta),
        # Magenta's metrics: means over steps of the per-step sums over the drums
        "metrics/hits_loss": hits_loss.mean().detach(),
        "metrics/velocities_loss": velocities_loss.mean().detach(),
        "metrics/offsets_loss": offsets_loss.mean().detach(),
        "metrics/accuracy": ((logits > 0).float() == hits_t).float().mean().detach(),  # per cell, teacher-forced
    }
