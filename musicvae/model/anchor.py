"""Anchors: a per-step logit bias that makes the greedy decode of a code follow one groove exactly.

The decoder cannot reproduce every groove from any code (fills, accents and toms mostly vanish).
An anchor goes around that limit instead of through it: from one teacher-forced pass at the
groove's code, each step gets the smallest bias on its target token that puts that token
``margin`` nats above the best other token.  Greedy decoding with the bias added then emits the
target at every step; since the decoder's input at step t is the token of step t-1, it sees the
teacher-forced inputs all the way and the margin holds at every step (the free run's logits differ
from the teacher-forced pass's by float rounding only, ~1e-5, far below the margin).

An anchor is sparse by nature: one (token, bias) per step, and a step the model already gets
right with the margin has bias 0.  Decoding takes anchors with weights (:func:`logit_bias`): the
weighted biases are added to every step's logits, so a weight below 1 lets the model's own groove
take over (``musicvae.api`` fades the weight with the distance from the groove).  The network
never changes: a decode with no anchor, or weight 0, is the model's own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from musicvae.pattern import NUM_TOKENS

MARGIN = 1.0  # nats by which the anchored token beats the best other token at weight 1
# At weight 1 (the groove itself: a morph's end, a grid's corner, similarity 1) the target also gets this
# many nats, so the groove plays exactly at any temperature the app offers (at T=2 another token wins a
# step with probability below 511 * exp(-50), i.e. never); below weight 1 sampling is free around it.
HOLD = 100.0


@dataclass(frozen=True)
class Anchor:
    """One groove's anchor: per step its target token [T] and the bias [T] on that token (>= 0)."""

    tokens: np.ndarray  # int64 [T]
    bias: np.ndarray  # float32 [T]

    @property
    def active_steps(self) -> int:
        """Steps where the model needs the bias at all (0: the model decodes the groove by itself)."""
        return int(np.count_nonzero(self.bias))


def anchor_biases(logits: torch.Tensor, tokens: torch.Tensor, margin: float = MARGIN) -> torch.Tensor:
    """Teacher-forced logits [N, T, 512] and target tokens [N, T] -> the smallest biases [N, T] on the
    targets that put each target ``margin`` above the best other token (0 where it already is)."""
    target = logits.gather(-1, tokens[..., None]).squeeze(-1)
    others = logits.scatter(-1, tokens[..., None], float("-inf")).amax(-1)
    return (others - target + margin).clamp_min(0.0)


def make_anchors(model, z: torch.Tensor, tokens: torch.Tensor, margin: float = MARGIN) -> list[Anchor]:
    """One anchor per row of codes z [N, Z] for target tokens [N, T] (one teacher-forced pass)."""
    with torch.inference_mode():
        logits = model.decode_logits(z.float(), tokens)
    biases = anchor_biases(logits, tokens, margin)
    return [Anchor(t.numpy().astype(np.int64), b.numpy().astype(np.float32)) for t, b in zip(tokens, biases)]


def logit_bias(anchors: list[Anchor], weights: np.ndarray | torch.Tensor) -> torch.Tensor:
    """The dense bias [N, T, 512] that ``weights`` [N, K] of ``anchors`` (K of them) add to the logits:
    row n, step t, token anchors[k].tokens[t] gets sum_k weights[n, k] * anchors[k].bias[t] (plus
    ``HOLD`` where a weight is 1: that row is the groove, at any temperature)."""
    weights = torch.as_tensor(np.asarray(weights, dtype=np.float32))
    if weights.ndim != 2 or weights.shape[1] != len(anchors):
        raise ValueError(f"weights must be [N, {len(anchors)}] (one column per anchor), got {tuple(weights.shape)}")
    steps = len(anchors[0].tokens)
    dense = torch.zeros(weights.shape[0], steps, NUM_TOKENS)
    for k, anchor in enumerate(anchors):
        tokens = torch.from_numpy(anchor.tokens).long()
        w = weights[:, k, None]
        contribution = w * torch.from_numpy(anchor.bias)[None] + HOLD * (w >= 1.0)  # [N, T]
        dense.index_put_((torch.arange(weights.shape[0])[:, None], torch.arange(steps)[None], tokens[None]),
                         contribution, accumulate=True)
    return dense
