"""Playable decoding never emits a step needing three hands; the drummer figures on hand-made patterns.

The decoders are checked on a tiny model whose output layer is pushed towards an unplayable token, so
that without the mask nearly every step would be one (the test fails when the mask is off).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import nudged_tiny_model

from musicvae.api import TrainedModel
from musicvae.evaluation.playability import (
    bar_coherence,
    drummer_figures,
    hands_needed,
    longest_roll,
    memorised,
    playable_logit_mask,
    playable_tokens,
    timekeeper_bars,
    two_sample_accuracy,
)
from musicvae.model.fast import FastMusicVAE
from musicvae.model.network import MusicVAE
from musicvae.pattern import CLASS_NAMES, DrumPattern, hits_from_tokens, tokens_from_hits

C = {name: i for i, name in enumerate(CLASS_NAMES)}


def token(*names: str) -> int:
    hits = np.zeros((1, 9), bool)
    hits[0, [C[n] for n in names]] = True
    return int(tokens_from_hits(hits)[0])


CRASH_RIDE_SNARE = token("snare", "closed hi-hat", "crash", "ride")  # three hands (the hat is a foot)


def test_hands_and_feet():
    assert hands_needed(hits_from_tokens(np.array([token("kick", "closed hi-hat", "snare", "ride")])))[0] == 2
    assert hands_needed(hits_from_tokens(np.array([CRASH_RIDE_SNARE])))[0] == 3
    allowed = playable_tokens()
    assert allowed.sum() == 4 * (1 + 7 + 21)  # kick and pedal hat free; at most 2 of the 7 hand drums
    assert allowed[token("kick", "closed hi-hat", "snare", "high tom")] and not allowed[CRASH_RIDE_SNARE]
    mask = playable_logit_mask(admit=np.array([CRASH_RIDE_SNARE]))
    assert mask[CRASH_RIDE_SNARE] == 0 and np.isneginf(mask[token("snare", "crash", "low tom")])


def grid(bars: list[dict[str, list[int]]]) -> np.ndarray:
    hits = np.zeros((16 * len(bars), 9), bool)
    for b, bar in enumerate(bars):
        for name, steps in bar.items():
            hits[[16 * b + s for s in steps], C[name]] = True
    return hits


ROCK = {"kick": [0, 8], "snare": [4, 12], "closed hi-hat": list(range(0, 16, 2))}
FILL = {"snare": list(range(16)), "crash": [0]}


def test_figures_on_hand_made_patterns():
    rock = grid([ROCK] * 4)
    fill = grid([ROCK, ROCK, FILL, FILL])
    busy = grid([{**ROCK, "crash": [4], "ride": [4]}] + [ROCK] * 3)  # snare + crash + ride on step 4
    hits = np.stack([rock, fill, busy])
    assert timekeeper_bars(hits).tolist() == [[True] * 4, [True, True, False, False], [True] * 4]
    assert longest_roll(hits).tolist() == [1, 32, 1]
    coherence = bar_coherence(hits)
    assert coherence[0] == 1.0 and coherence[2] == pytest.approx((12 / 14 + 1 + 1) / 3)
    figures = drummer_figures(hits, train=rock[None])
    assert figures["three_hand_windows"] == pytest.approx(1 / 3, abs=1e-4)
    assert figures["three_hand_steps"] == pytest.approx(1 / 192, abs=1e-5)
    assert figures["timekeeper_bars"] == pytest.approx(10 / 12, abs=1e-4)
    assert figures["roll_bar_windows"] == pytest.approx(1 / 3, abs=1e-4)
    assert figures["drums_used"] == pytest.approx((3 + 4 + 5) / 3, abs=0.01)
    assert figures["memorised"] == pytest.approx(2 / 3, abs=1e-4)  # rock itself, busy 2 cells off; fill is far
    assert memorised(busy[None], rock[None], cells=1).tolist() == [False]


def test_two_sample_accuracy_tells_different_sets_apart_and_not_alike_ones():
    rng = np.random.default_rng(0)
    sparse = rng.random((200, 64, 9)) < 0.05
    dense = rng.random((200, 64, 9)) < 0.15
    assert two_sample_accuracy(sparse, dense) > 0.95
    assert abs(two_sample_accuracy(sparse[:100], sparse[100:]) - 0.5) < 0.15


@pytest.fixture(scope="module")
def pushed() -> MusicVAE:
    """A tiny model that wants to play snare, crash and ride at once on every step."""
    model = nudged_tiny_model()
    with torch.no_grad():
        model.core.output.bias[CRASH_RIDE_SNARE] += 30.0  # the argmax of nearly every step
    return model


def three_hand_share(tokens: torch.Tensor) -> float:
    return float((hands_needed(hits_from_tokens(tokens.numpy())) > 2).mean())


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_mask_keeps_every_decoder_playable(pushed, temperature):
    z = torch.randn(4, pushed.hp.z_size, generator=torch.Generator().manual_seed(1))
    mask = torch.from_numpy(playable_logit_mask())
    fast = FastMusicVAE(pushed)
    with torch.inference_mode():
        assert three_hand_share(fast.free_run(z, temperature, torch.Generator().manual_seed(2))[1]) > 0.5
        decoded = {
            "plain": pushed.free_run(z, temperature, torch.Generator().manual_seed(2), logit_mask=mask)[1],
            **{backend: fast.free_run(z[:1] if backend == "numpy" else z, temperature,
                                      torch.Generator().manual_seed(2), backend=backend, logit_mask=mask)[1]
               for backend in ("torch", "numpy")},
        }
    for name, tokens in decoded.items():
        assert three_hand_share(tokens) == 0.0, name
    assert torch.equal(decoded["plain"], decoded["torch"])


def test_api_playable_admits_the_callers_own_grooves(pushed):
    model = TrainedModel(pushed, {"config": "tiny-hier-drums_4bar"})
    assert three_hand_share(torch.from_numpy(np.stack([p.to_tokens() for p in model.sample(4, 1.0, seed=3)]))) > 0.5
    samples = model.sample(4, 1.0, seed=3, playable=True)
    assert all(hands_needed(p.hits).max() <= 2 for p in samples)
    upload = DrumPattern(grid([{**ROCK, "crash": [4], "ride": [4]}] + [ROCK] * 3))  # a real groove's 3-hand step
    [again] = model.reconstruct([upload], playable=True)
    assert (again.to_tokens() == CRASH_RIDE_SNARE).any()  # admitted: the model may still play it
    assert set(np.unique(again.to_tokens())) <= set(np.flatnonzero(playable_tokens())) | {CRASH_RIDE_SNARE}
    [refused] = model.decode(model.codes([upload]), 0.0, playable=True)  # nothing admitted: the rule holds
    assert hands_needed(refused.hits).max() <= 2
