"""Refined encoding, even morphs and `generate --mode reconstruct`, on a shipped model and real GMD windows."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from musicvae.api import DEFAULT_INTERPOLATE_MODEL, TrainedModel, shipped_checkpoint
from musicvae.latent.morph import even_t
from musicvae.model.refine import RefineSettings, window_hit_f1
from musicvae.pattern import DrumPattern

PROBE = "drummer1/eval_session/1_funk-groove1_138_beat_4-4.mid"  # a test-split groove


@pytest.fixture(scope="module")
def model() -> TrainedModel:
    return TrainedModel.load(shipped_checkpoint(DEFAULT_INTERPOLATE_MODEL))


@pytest.fixture(scope="module")
def windows(gmd) -> list[DrumPattern]:
    from musicvae.midi.parse import file_windows

    return [w for _, w in file_windows((gmd / PROBE).read_bytes())[:4]]


def _greedy_f1(model: TrainedModel, windows: list[DrumPattern], z: torch.Tensor) -> torch.Tensor:
    tokens = torch.from_numpy(np.stack([w.to_tokens() for w in windows]))
    return window_hit_f1(tokens, model.fast.free_run(z, 0.0)[1])


def test_refinement_raises_f1_and_keeps_z_inside_the_ball(model, windows):
    _, mu, _ = model.encode(windows)
    limit = 0.95 * float(mu.norm(dim=1).max())
    z, info = model.encode_refined(windows, RefineSettings(steps=30, time_budget_s=None, max_norm=limit))
    plain, refined = _greedy_f1(model, windows, mu), _greedy_f1(model, windows, z)
    assert torch.allclose(torch.tensor(info["hit_f1_before"]), plain)
    assert torch.allclose(torch.tensor(info["hit_f1"]), refined)
    assert (refined >= plain).all() and refined.mean() > plain.mean() + 0.02
    assert float(z.norm(dim=1).max()) <= limit + 1e-4


def test_refinement_honours_its_time_budget(model, windows):
    _, info = model.encode_refined(windows, RefineSettings(steps=100_000, time_budget_s=0.2, check_every=5))
    assert 0 < info["steps"] < 100_000


def test_similar_is_vary_of_the_grooves_code(model, windows):
    """The app varies an encoded code (``vary``); ``similar`` encodes and does the same."""
    ours = model.similar(windows[0], 3, 0.7, 0.5, seed=3)
    theirs = model.vary(model.codes([windows[0]]), 3, 0.7, 0.5, 3, qpm=windows[0].qpm)
    assert [p.hits.tolist() for p in ours] == [p.hits.tolist() for p in theirs]
    assert len({p.hits.tobytes() for p in ours}) > 1  # three variations, not one groove thrice


def test_zero_steps_is_the_plain_encoder(model, windows):
    _, mu, _ = model.encode(windows)
    assert torch.equal(model.codes(windows, RefineSettings(steps=0)), mu)
    assert torch.equal(model.codes(windows, None), mu)


def test_even_t_spreads_the_changes_of_a_jumpy_path():
    # a path whose decodes flip 40 hits between t=0.5 and 0.55 and change one hit per 0.05 elsewhere
    def decode(ts):
        grids = []
        for t in ts:
            g = np.zeros((64, 9), bool)
            g[: int(t * 20), 0] = True
            if t >= 0.52:
                g[:40, 2] = True
            grids.append(g)
        return grids

    ts = even_t(decode, 5, fine=9, max_decodes=64)
    assert ts[0] == 0.0 and ts[-1] == 1.0 and (np.diff(ts) > 0).all()
    steps = [int((a != b).sum()) for a, b in zip(decode(ts[:-1]), decode(ts[1:]))]
    uniform = [int((a != b).sum()) for a, b in zip(decode(np.linspace(0, 1, 5)[:-1]), decode(np.linspace(0, 1, 5)[1:]))]
    assert max(steps) / max(min(steps), 1) < max(uniform) / max(min(uniform), 1)


@pytest.mark.parametrize("seed", range(6))
def test_even_choice_finds_the_smallest_largest_to_smallest_step(seed):
    """On small random paths the choice is as even as the best of every possible choice (brute force)."""
    import itertools

    from musicvae.latent.morph import _even_choice, _spread

    rng = np.random.default_rng(seed)
    grids = [np.zeros((16, 9), bool)]
    for _ in range(11):  # a path that flips 1-12 random cells per step (a few big jumps)
        g = grids[-1].copy()
        g.flat[rng.choice(g.size, int(rng.integers(1, 13)), replace=False)] ^= True
        grids.append(g)
    grids = np.stack(grids)
    flat = grids.reshape(len(grids), -1)
    dist = (flat[:, None, :] != flat[None, :, :]).sum(-1).astype(float)
    inners = itertools.combinations(range(1, len(grids) - 1), 3)
    best = min(_spread(dist, [0, *inner, len(grids) - 1]) for inner in inners)
    chosen = _even_choice(grids, 5)
    assert chosen[0] == 0 and chosen[-1] == len(grids) - 1 and len(chosen) == 5
    assert _spread(dist, chosen) == pytest.approx(best)


def test_even_morph_keeps_its_ends_and_evens_the_steps(model, windows):
    a, b = windows[0], DrumPattern.from_tokens(np.where(np.arange(64) % 2 == 0, 4, 0))  # 8th hi-hats
    uniform = model.interpolate(a, b, 6, temperature=0.0, spacing="uniform")
    even = model.interpolate(a, b, 6, temperature=0.0, spacing="even")
    for path in (uniform, even):
        assert np.array_equal(path[0].hits, model.reconstruct([a])[0].hits)
        assert np.array_equal(path[-1].hits, model.reconstruct([b])[0].hits)

    def spread(path):
        changes = [int((x.hits != y.hits).sum()) for x, y in zip(path[:-1], path[1:])]
        return max(changes) / max(min(changes), 1)

    assert spread(even) <= spread(uniform)


def test_generate_reconstruct_writes_input_and_reconstruction(gmd, tmp_path):
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "musicvae.cli", "generate", "--mode", "reconstruct", "--input_midi_1",
         str(gmd / PROBE), "--output_dir", str(out), "--refine_steps", "20"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == ["1_funk-groove1_138_beat_4-4_anchored.mid", "1_funk-groove1_138_beat_4-4_input.mid",
                     "1_funk-groove1_138_beat_4-4_recon.mid"]
    assert "hit F1 0." in result.stdout and "refined, 20 steps" in result.stdout
    assert "the anchored decode is the input exactly" in result.stdout
    names = names[1:]
    from musicvae.midi.loader import load_grooves

    written = load_grooves((out / names[0]).read_bytes(), names[0]).windows[0]
    expected = load_grooves((gmd / PROBE).read_bytes(), "probe")
    assert np.array_equal(written.hits, expected.windows[expected.default_index].hits)
