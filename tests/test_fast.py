"""The fast inference engine gives the plain model's results; ``musicvae bench --quick`` runs.

Correctness only, never timing.  Freshly initialised models decode almost constant tokens
(their output layers start near zero), so the weights get a random nudge first.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from conftest import nudged_tiny_model

from musicvae.configs import get_config
from musicvae.evaluation.speed import KEYS, flops_per_example
from musicvae.model.fast import FastMusicVAE
from musicvae.model.network import MusicVAE
from musicvae.pattern import roll_tensor

CASES = {
    "hierarchical": {},
    "flat": {"decoder": "flat"},
    "three-layer flat": {"decoder": "flat", "dec_rnn_size": [24, 16, 8]},  # unequal sizes: the state layout
    "three-layer hierarchical": {"dec_rnn_size": [8, 16, 24], "enc_rnn_size": [16, 8]},
}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small ops on a busy 2-core machine: OpenMP's second thread only adds waiting."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(params=list(CASES), scope="module")
def pair(request) -> tuple[MusicVAE, FastMusicVAE]:
    model = nudged_tiny_model(CASES[request.param])
    return model, FastMusicVAE(model)


BACKENDS = ["torch", "numpy"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_greedy_tokens_and_logits_match(pair, backend):
    model, fast = pair
    z = torch.randn(6, model.hp.z_size, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        plain_logits, plain_tokens = model.free_run(z, 0.0)
    logits, tokens = fast.free_run(z, 0.0, return_logits=True, backend=backend)
    assert len(set(map(tuple, tokens.tolist()))) > 1 and len(tokens.unique()) >= 3  # not a degenerate decode
    assert torch.equal(tokens, plain_tokens)
    torch.testing.assert_close(logits, plain_logits, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("temperature", [0.5, 1.0, 1.7])
def test_samples_match_torch_multinomial_for_a_seed(pair, temperature, backend):
    model, fast = pair
    z = torch.randn(5, model.hp.z_size, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        _, plain = model.free_run(z, temperature, torch.Generator().manual_seed(7))
    _, tokens = fast.free_run(z, temperature, torch.Generator().manual_seed(7), backend=backend)
    assert torch.equal(tokens, plain)
    _, again = fast.free_run(z, temperature, torch.Generator().manual_seed(7), backend=backend)
    _, other = fast.free_run(z, temperature, torch.Generator().manual_seed(8), backend=backend)
    assert torch.equal(tokens, again) and not torch.equal(tokens, other)


def test_global_rng_stream_is_consumed_like_the_plain_path(pair):
    model, fast = pair
    z = torch.randn(3, model.hp.z_size)
    torch.manual_seed(11)
    with torch.inference_mode():
        _, plain = model.free_run(z, 0.8)
    after_plain = torch.rand(3)
    torch.manual_seed(11)
    _, tokens = fast.free_run(z, 0.8)
    assert torch.equal(tokens, plain) and torch.equal(torch.rand(3), after_plain)


def test_batched_decode_equals_one_at_a_time(pair):
    """A grid decodes in one batch (torch loop); a groove alone takes the numpy loop: same grooves."""
    model, fast = pair
    z = torch.randn(4, model.hp.z_size, generator=torch.Generator().manual_seed(3))
    alone = torch.cat([fast.free_run(z[i : i + 1], 0.0)[1] for i in range(4)])
    assert torch.equal(fast.free_run(z, 0.0)[1], alone)


def reference_encode(model: MusicVAE, roll: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The spec's encoder (§2.2) stepped by hand in float64 from the raw weights, without nn.LSTM:
    stacked bidirectional layers (layer k+1 reads [fw_k ; bw_k]), e = [fw h after t=T-1 ; bw h
    after t=0], mu = W_mu e + b_mu, sigma = softplus(W_sigma e + b_sigma)."""

    def run(x, w_ih, w_hh, b_ih, b_hh):
        h = c = x.new_zeros(x.shape[0], w_hh.shape[1])
        outputs = []
        for t in range(x.shape[1]):
            i, f, g, o = (x[:, t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh).chunk(4, dim=-1)  # PyTorch's gate order
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outputs.append(h)
        return torch.stack(outputs, 1)

    x = roll.double()
    for layer in model.encoder.layers:
        p = {name: value.detach().double() for name, value in layer.lstm.named_parameters()}
        forward = run(x, p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"], p["bias_hh_l0"])
        backward = run(x.flip(1), p["weight_ih_l0_reverse"], p["weight_hh_l0_reverse"], p["bias_ih_l0_reverse"],
                       p["bias_hh_l0_reverse"]).flip(1)
        x = torch.cat([forward, backward], dim=-1)
    hidden = model.encoder.layers[-1].hidden_size
    encoding = torch.cat([x[:, -1, :hidden], x[:, 0, hidden:]], dim=-1)
    head = {name: value.detach().double() for name, value in model.encoder.named_parameters()}
    mu = encoding @ head["mu.weight"].T + head["mu.bias"]
    sigma = torch.nn.functional.softplus(encoding @ head["sigma.weight"].T + head["sigma.bias"])
    return mu.float(), sigma.float()


def test_encode_matches_a_hand_stepped_encoder(pair):
    model, fast = pair
    roll = roll_tensor(torch.randint(0, 512, (3, 64), generator=torch.Generator().manual_seed(4)))
    mu, sigma = reference_encode(model, roll)
    assert mu.std() > 0.01 and len({round(v, 4) for v in sigma.flatten().tolist()}) > 10  # not a degenerate code
    fast_mu, fast_sigma = fast.encode(roll)
    torch.testing.assert_close(fast_mu, mu, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(fast_sigma, sigma, atol=1e-5, rtol=1e-4)


def test_numpy_path_holds_openblas_to_one_thread():
    """The numpy loop runs under one OpenBLAS thread (threadpoolctl) and restores the count after."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from musicvae.model import fast

    if fast._BLAS_THREADS is None:
        pytest.skip("numpy is not linked against OpenBLAS here")

    def openblas_threads() -> set[int]:
        return {info["num_threads"] for info in threadpool_info() if info["internal_api"] == "openblas"}

    with threadpool_limits(limits=2, user_api="blas"):
        assert openblas_threads() == {2}
        with fast._one_blas_thread():
            assert openblas_threads() == {1}
        assert openblas_threads() == {2}


def test_snapshot_does_not_touch_the_model():
    model = nudged_tiny_model({})
    before = {k: v.clone() for k, v in model.state_dict().items()}
    FastMusicVAE(model).free_run(torch.randn(2, model.hp.z_size), 0.5)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_flop_count_of_the_small_model():
    """The formula of the bench docstring, worked out by hand for hier-drums_4bar_small."""
    flops = flops_per_example(get_config("hier-drums_4bar_small").hparams)
    lstm = lambda i, h: 2 * 4 * h * (i + h)  # noqa: E731
    encoder = 2 * 64 * lstm(10, 512) + 2 * 2 * 1024 * 256
    conductor = 2 * 256 * 1024 + 4 * (lstm(1, 256) + lstm(256, 256))
    decoder = 4 * (2 * 256 * 1024 + 2 * 256 * 1024 + 16 * (2 * 256 * 1024 + lstm(256, 256) + 2 * 256 * 512))
    assert (flops["encoder"], flops["conductor"], flops["decoder"]) == (encoder, conductor, decoder)
    assert flops["train"] == 3 * (encoder + conductor + decoder) - 2 * 64 * 2 * 4 * 512 * 10
    assert 400e6 < flops["forward"] < 410e6


@pytest.mark.slow
def test_bench_quick_prints_every_key():
    done = subprocess.run([sys.executable, "-m", "musicvae.cli", "bench", "--quick", "--json", "--no_prepare"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1  # the table goes to stderr
    result = json.loads(lines[0])
    assert set(KEYS) <= set(result)
    for key in ("train_mfu_b512", "train_mfu_b64"):
        assert 0.0 < result[key] < 1.5  # a share (quick mode's tiny model is far from the peak)
    for key in KEYS:
        assert result[key] is None or result[key] > 0, key
    assert all(result[k] is not None or k in result["reasons"] for k in KEYS)
