"""The network: sizes, the objective, and that the fast stepping path matches teacher forcing."""

from __future__ import annotations

import math

import pytest
import torch

from musicvae.configs import get_config, parse_hparams
from musicvae.model.network import LSTMLayer, MusicVAE
from musicvae.model.objective import beta_at, compute_loss, kl_divergence, learning_rate_at, sampling_probability


def tiny(**overrides) -> MusicVAE:
    torch.manual_seed(0)
    return MusicVAE(get_config("tiny-hier-drums_4bar", overrides).hparams)


def test_parameter_counts_match_magenta():
    model = MusicVAE(get_config("hier-drums_4bar_small").hparams)
    second_bias = sum(p.numel() for n, p in model.named_parameters() if "bias_hh" in n)
    assert model.num_parameters() - second_bias == 5_689_344  # Magenta's TF count (spec §3)
    flat = MusicVAE(get_config("cat-drums_2bar_small").hparams)
    flat_extra = sum(p.numel() for n, p in flat.named_parameters() if "bias_hh" in n)
    assert flat.num_parameters() - flat_extra == 4_636_672


@pytest.mark.parametrize("decoder", ["hierarchical", "flat"])
def test_shapes_and_finite_loss(decoder):
    model = tiny(decoder=decoder)
    tokens = torch.randint(0, 512, (3, 64))
    out = compute_loss(model, tokens, step=1)
    assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])
    assert out["segment_accuracy"].shape == (4 if decoder == "hierarchical" else 1,)
    logits, sampled = model.free_run(torch.randn(3, 16), temperature=0.7)
    assert logits.shape == (3, 64, 512) and sampled.shape == (3, 64)
    assert int(sampled.min()) >= 0 and int(sampled.max()) < 512


@pytest.mark.parametrize("decoder", ["hierarchical", "flat"])
def test_stepping_matches_teacher_forcing(decoder):
    """Greedy free-running logits equal teacher-forced logits on the tokens it produced."""
    model = tiny(decoder=decoder).eval()
    with torch.no_grad():
        for p in model.parameters():  # make the decoder far from uniform so argmax is stable
            p.add_(torch.randn_like(p) * 0.3)
        z = torch.randn(4, 16)
        logits, tokens = model.free_run(z, temperature=0.0)
        teacher = model.decode_logits(z, tokens)
    assert torch.allclose(logits, teacher, atol=1e-4)


def test_initial_state_matches_spec():
    model = tiny()
    mu, sigma = model.encode(torch.zeros(2, 64, 10))
    assert torch.allclose(sigma, torch.full_like(sigma, math.log(2.0)), atol=0.01)  # softplus(0)
    assert mu.abs().max() < 0.05


def test_initialisation_follows_spec():
    """Spec §2.1-2.3 (and pitfall 15): dense heads and z->state kernels ~ N(0, 0.001^2) with zero
    bias, every LSTM's forget gate bias +1 (the rest of both biases 0), glorot-uniform kernels."""
    torch.manual_seed(0)
    model = MusicVAE(get_config("hier-drums_4bar_small").hparams)  # big layers: a tight std estimate
    dense = {"encoder.mu": model.encoder.mu, "encoder.sigma": model.encoder.sigma,
             "conductor z->state": model.conductor.initial_state, "core context->state": model.core.rnn.initial_state}
    for name, layer in dense.items():
        assert layer.weight.std().item() == pytest.approx(0.001, rel=0.05), name
        assert layer.weight.mean().abs().item() < 1e-4 and not layer.bias.any(), name
    layers = [m for m in model.modules() if isinstance(m, LSTMLayer)]
    assert len(layers) == 1 + 2 + 2  # encoder (bidirectional), conductor, core decoder
    for layer in layers:
        hidden, lstm = layer.hidden_size, layer.lstm
        for suffix in [""] + (["_reverse"] if lstm.bidirectional else []):
            expected = torch.zeros(4 * hidden)
            expected[hidden : 2 * hidden] = 1.0  # PyTorch gate order (i, f, g, o)
            assert torch.equal(getattr(lstm, f"bias_ih_l0{suffix}").detach() + getattr(lstm, f"bias_hh_l0{suffix}"),
                               expected)
            weight = getattr(lstm, f"weight_ih_l0{suffix}")
            limit = math.sqrt(6.0 / (weight.shape[1] + 5 * hidden))  # glorot on TF's [I + H, 4H] kernel
            assert weight.abs().max().item() <= limit and weight.abs().max().item() > 0.95 * limit
    with torch.no_grad():  # at z ~ N(0, I) the initial states are tiny: tanh(0.001 * sqrt(256) * N(0, 1))
        state = model.conductor.init_state(torch.randn(64, model.hp.z_size))
    assert max(float(t.abs().max()) for pair in state for t in pair) < 0.1


def test_kl_matches_torch_distributions():
    mu, sigma = torch.randn(5, 7), torch.rand(5, 7) + 0.1
    q = torch.distributions.Normal(mu, sigma)
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(sigma))
    expected = torch.distributions.kl_divergence(q, p).sum(-1)
    assert torch.allclose(kl_divergence(mu, sigma), expected, atol=1e-5)


def test_free_bits_hinge_is_per_example():
    """Examples with KL 2, 4, 20 and 40 nats and 10 free nats: the per-example hinge (spec §2.6)
    costs mean(0, 0, 10, 30) = 10 nats; a batch-level hinge would cost 16.5 - 10 = 6.5 and a
    per-dimension one less still."""
    model = tiny(free_bits=10.0 / math.log(2.0), max_beta=0.5)
    kls = torch.tensor([2.0, 4.0, 20.0, 40.0])
    mu = torch.zeros(4, model.hp.z_size)
    mu[:, 0] = torch.sqrt(2 * kls)  # sigma = 1: KL = mu^2 / 2, all of it in one dimension
    sigma = torch.ones_like(mu)
    assert torch.allclose(kl_divergence(mu, sigma), kls)
    model.encode = lambda roll: (mu, sigma)  # the encoder's outputs, chosen
    out = compute_loss(model, torch.randint(0, 512, (4, 64)), step=5)
    assert float(out["losses/kl_loss"]) == pytest.approx(10.0, rel=1e-5)
    assert float(out["losses/kl_bits"]) == pytest.approx(16.5 / math.log(2.0), rel=1e-5)
    beta = beta_at(model.hp, 5)
    assert beta == pytest.approx(0.5)
    assert float(out["loss"].detach()) == pytest.approx(float(out["losses/r_loss"]) + beta * 10.0, rel=1e-5)


def test_schedules_follow_the_spec():
    hp = get_config("cat-drums_2bar_small").hparams
    assert sampling_probability(hp, 6931) == pytest.approx(0.5, abs=0.01)
    assert sampling_probability(hp, 0) == pytest.approx(0.001, abs=1e-4)
    hier = get_config("hier-drums_4bar_small").hparams
    assert beta_at(hier, 0) == 0.0 and beta_at(hier, 1) == pytest.approx(0.2)
    assert learning_rate_at(hier, 0) == pytest.approx(1e-3)
    assert learning_rate_at(hier, 20000) == pytest.approx(1.44e-4, rel=0.01)


def test_scheduled_sampling_runs_in_training():
    model = tiny(sampling_schedule="constant", sampling_rate=0.5).train()
    out = compute_loss(model, torch.randint(0, 512, (2, 64)), step=10)
    out["loss"].backward()
    assert all(p.grad is not None for p in model.encoder.parameters())


def test_hparams_parsing_and_validation():
    assert parse_hparams("batch_size=64,enc_rnn_size=[256, 256],decoder=flat") == {
        "batch_size": 64, "enc_rnn_size": [256, 256], "decoder": "flat"}
    with pytest.raises(ValueError, match="unknown hparams"):
        get_config("hier-drums_4bar_small", "bogus=1")
    with pytest.raises(ValueError, match="level_lengths"):
        get_config("hier-drums_4bar_small", "level_lengths=[4,8]")
    with pytest.raises(ValueError, match="unknown config"):
        get_config("nope")
