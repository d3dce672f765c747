"""Anchored codes: a groove decodes exactly at its own code with weight 1, in both decode paths, and an
anchor changes nothing outside its own decodes; the first refinement in a fresh process takes steps.

A nudged tiny model (random weights) is used on purpose: it reproduces no groove by itself, so every
exact decode here is the anchor's doing.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import nudged_tiny_model

from musicvae.api import Anchored, TrainedModel, morph_weights
from musicvae.model.anchor import anchor_biases, logit_bias
from musicvae.pattern import NUM_CLASSES, DrumPattern


@pytest.fixture(scope="module")
def model() -> TrainedModel:
    return TrainedModel(nudged_tiny_model(), {"config": "tiny-hier-drums_4bar"})


def grooves(steps: int, n: int = 6, seed: int = 0) -> list[DrumPattern]:
    """Random grooves of several densities plus the edge cases: empty, one hit, every class at every step."""
    rng = np.random.default_rng(seed)
    out = [DrumPattern(rng.random((steps, NUM_CLASSES)) < d) for d in np.linspace(0.05, 0.8, n)]
    one = np.zeros((steps, NUM_CLASSES), bool)
    one[5, 4] = True
    return out + [DrumPattern(np.zeros((steps, NUM_CLASSES), bool)), DrumPattern(one),
                  DrumPattern(np.ones((steps, NUM_CLASSES), bool))]


def test_biases_are_the_smallest_that_keep_the_margin():
    logits = torch.tensor([[[2.0, 0.0, 1.5], [0.0, 3.0, 0.0]]])
    tokens = torch.tensor([[2, 1]])
    # step 0: 1.5 must beat 2.0 by 1 -> bias 1.5; step 1: 3.0 already beats 0.0 by more than 1 -> 0
    assert anchor_biases(logits, tokens).tolist() == [[1.5, 0.0]]


def test_weight_one_decodes_every_groove_exactly(model):
    patterns = grooves(model.num_steps)
    own = model.reconstruct(patterns)
    assert sum(np.array_equal(p.hits, q.hits) for p, q in zip(patterns, own)) < len(patterns)  # the model alone
    anchored = model.reconstruct(patterns, anchor=True)
    for p, q in zip(patterns, anchored):
        assert np.array_equal(p.hits, q.hits)
    codes = model.encode_anchored(patterns)  # weight 1 holds the groove at any temperature, too
    sampled = model.decode(torch.stack([g.code for g in codes]), 2.0, seed=0, anchors=[g.anchor for g in codes],
                           weights=np.eye(len(codes), dtype=np.float32))
    for p, q in zip(patterns, sampled):
        assert np.array_equal(p.hits, q.hits)


def test_fast_and_plain_paths_add_the_same_bias(model):
    patterns = grooves(model.num_steps)
    anchored = model.encode_anchored(patterns)
    z = torch.stack([g.code for g in anchored])
    weights = np.random.default_rng(1).random((len(z), len(anchored))).astype(np.float32)
    bias = logit_bias([g.anchor for g in anchored], weights)
    plain_logits, plain_tokens = model.model.free_run(z, 0.0, logit_bias=bias)
    for backend in ("torch", "numpy"):
        rows = slice(None) if backend == "torch" else slice(0, 1)  # numpy decodes one groove at a time
        fast_logits, fast_tokens = model.fast.free_run(z[rows], 0.0, return_logits=True, backend=backend,
                                                       logit_bias=bias[rows])
        assert torch.equal(fast_tokens, plain_tokens[rows])
        torch.testing.assert_close(fast_logits, plain_logits[rows], atol=1e-4, rtol=1e-4)


def test_an_anchor_changes_no_decode_outside_its_own(model):
    patterns = grooves(model.num_steps)
    anchored = model.encode_anchored(patterns[:2])
    others = model.sample_z(5, seed=3)
    before = [p.hits for p in model.decode(others, 0.0)]
    model.interpolate(patterns[0], patterns[1], 5, temperature=0.0, ends=anchored)
    model.decode(torch.stack([g.code for g in anchored]), 0.7, seed=1, anchors=[g.anchor for g in anchored],
                 weights=np.eye(2, dtype=np.float32))
    after = [p.hits for p in model.decode(others, 0.0)]
    assert all(np.array_equal(x, y) for x, y in zip(before, after))
    # in one batch, rows whose weights are 0 decode as without any anchor
    mixed = torch.cat([others, anchored[0].code[None]])
    weights = np.zeros((6, 1), np.float32)
    weights[5, 0] = 1.0
    decoded = model.decode(mixed, 0.0, anchors=[anchored[0].anchor], weights=weights)
    assert all(np.array_equal(x, p.hits) for x, p in zip(before, decoded[:5]))
    assert np.array_equal(decoded[5].hits, patterns[0].hits)


def test_morphs_grids_and_variations_start_on_the_grooves(model):
    patterns = grooves(model.num_steps)
    a, b = patterns[1], patterns[3]
    for spacing in ("uniform", "even"):
        path = model.interpolate(a, b, 5, temperature=0.0, spacing=spacing, anchor=True)
        assert np.array_equal(path[0].hits, a.hits) and np.array_equal(path[-1].hits, b.hits)
    corners = patterns[:4]
    cells = model.grid(corners, 3, temperature=0.0, anchor=True)
    for corner, index in zip(corners, (0, 2, 6, 8)):
        assert np.array_equal(cells[index].hits, corner.hits)
    [same] = model.similar(a, 1, 1.0, temperature=0.0, seed=0, anchor=True)
    assert np.array_equal(same.hits, a.hits)
    base = model.encode_anchored([a])[0]
    [still] = model.steered(base.code[None].numpy(), 0.0, 0, base)
    assert np.array_equal(still.hits, a.hits)
    far = model.steered((base.code + 100.0)[None].numpy(), 0.0, 0, base)[0]
    assert np.array_equal(far.hits, model.decode((base.code + 100.0)[None], 0.0)[0].hits)  # faded out


def test_weights_fade_from_each_end():
    w = morph_weights([0.0, 0.5, 1.0])
    assert w[0].tolist() == [1.0, 0.0] and w[2].tolist() == [0.0, 1.0]
    assert 0 < w[1, 0] < 1 and w[1, 0] == w[1, 1]


def test_anchored_is_a_code_and_an_anchor(model):
    [g] = model.encode_anchored(grooves(model.num_steps)[:1])
    assert isinstance(g, Anchored) and g.code.shape == (model.z_size,) and g.anchor.tokens.shape == (model.num_steps,)


FIRST_REFINE = """
import torch
from musicvae.api import TrainedModel
from musicvae.configs import get_config
from musicvae.model.network import MusicVAE
from musicvae.model.refine import RefineSettings
from musicvae.pattern import DrumPattern
import numpy as np
torch.manual_seed(0)
net = MusicVAE(get_config("tiny-hier-drums_4bar").hparams).eval()
with torch.no_grad():
    for p in net.parameters():
        p.add_(0.3 * torch.randn_like(p))
model = TrainedModel(net, {"config": "x"})
groove = DrumPattern(np.random.default_rng(0).random((model.num_steps, 9)) < 0.3)
_, info = model.encode_refined([groove], RefineSettings(steps=50, time_budget_s=0.2))
print("STEPS", info["steps"])
"""


def test_the_first_refinement_in_a_fresh_process_takes_steps():
    out = subprocess.run([sys.executable, "-c", FIRST_REFINE], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    steps = int(out.stdout.split("STEPS")[1])
    assert steps > 0
