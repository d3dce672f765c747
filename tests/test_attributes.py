"""Attribute formulas on hand-built patterns with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from musicvae.latent.attributes import (
    CLOSED_HAT,
    KICK,
    OPEN_HAT,
    SNARE,
    compute_all,
    density,
    four_on_the_floor,
    open_hat_ratio,
    regularity,
    syncopation,
)


def empty() -> np.ndarray:
    return np.zeros((64, 9), dtype=bool)


def four_floor_rock() -> np.ndarray:
    hits = empty()
    hits[::4, KICK] = True  # every beat
    hits[4::8, SNARE] = True  # beats 2 and 4
    hits[::2, CLOSED_HAT] = True  # 8ths
    return hits


def test_density_counts_hits_per_bar():
    hits = four_floor_rock()
    assert density(hits)[0] == pytest.approx(4 + 2 + 8)
    assert density(empty())[0] == 0


def test_four_on_the_floor():
    assert four_on_the_floor(four_floor_rock())[0] == pytest.approx(1.0)
    half = empty()
    half[::8, KICK] = True  # beats 1 and 3 only
    assert four_on_the_floor(half)[0] == pytest.approx(0.5)
    offbeat_kick = four_floor_rock()
    offbeat_kick[3::16, KICK] = True  # one extra kick per bar off the beat
    assert four_on_the_floor(offbeat_kick)[0] == pytest.approx(1.0 * 16 / 20)


def test_syncopation_of_purely_offbeat_and_straight_patterns():
    offbeat = empty()
    offbeat[1::2, CLOSED_HAT] = True
    assert syncopation(offbeat)[0] == 1.0
    assert syncopation(four_floor_rock())[0] == 0.0


def test_open_hat_ratio_and_regularity():
    hits = four_floor_rock()
    assert open_hat_ratio(hits)[0] == 0.0
    hits[2::4, CLOSED_HAT] = False
    hits[2::4, OPEN_HAT] = True
    assert open_hat_ratio(hits)[0] == pytest.approx(0.5)
    assert regularity(hits)[0] == 1.0
    hits[48:, :] = False  # last bar empty: one of three bar pairs shares nothing
    assert regularity(hits)[0] == pytest.approx(2 / 3)


def test_compute_all_is_batched():
    batch = np.stack([four_floor_rock(), empty()])
    values = compute_all(batch)
    assert all(v.shape == (2,) for v in values.values())
    assert values["kick"].tolist() == [4.0, 0.0]


def test_attribute_vector_recovers_the_known_direction():
    from musicvae.latent.steering import attribute_vectors

    rng = np.random.default_rng(0)
    mu = rng.normal(size=(4000, 8))
    values = {"density": 3.0 * mu[:, 2] + 0.1 * rng.normal(size=4000), "constant": np.ones(4000)}
    vectors = attribute_vectors(mu, values)
    assert set(vectors) == {"density"}  # a constant attribute has no direction
    v = vectors["density"] / np.linalg.norm(vectors["density"])
    assert abs(v[2]) > 0.99 and v[2] > 0
    # top minus bottom quartile means of a standard normal: 2 * E[x | x > 0.674] = 2 * 1.271
    assert np.linalg.norm(vectors["density"]) == pytest.approx(2.54, rel=0.05)


def test_spearman_and_summary():
    from musicvae.latent.steering import ALPHAS, spearman, summarise

    assert spearman(np.arange(5), np.arange(5) ** 3) == pytest.approx(1.0)
    assert spearman(np.arange(5), -np.arange(5)) == pytest.approx(-1.0)
    assert spearman(np.arange(5), np.ones(5)) == 0.0
    grooves = 4
    rising = np.repeat(ALPHAS[:, None], grooves, axis=1) * 2.0 + 10
    flat = np.full_like(rising, 3.0)
    result = summarise("density", {"density": rising, "kick": flat}, {"density": 1.0, "kick": 1.0})
    assert result["ship"] and result["rho"] == 1.0 and result["change_per_unit"] == pytest.approx(2.0)
    assert result["entanglement"] == 0.0
    falling = summarise("kick", {"density": rising, "kick": -rising}, {"density": 1.0, "kick": 1.0})
    assert not falling["ship"] and falling["entanglement"] == pytest.approx(1.0)
