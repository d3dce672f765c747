"""The generalisation recipe: augmentations, denoising, schedules, best-checkpoint selection, quality."""

from __future__ import annotations

import json

import numpy as np
import torch

from musicvae.configs import get_config
from musicvae.data.storage import load_split
from musicvae.evaluation.quality import bar_repetition, degenerate_mask, nearest_windows, retrieval_baseline
from musicvae.model.objective import learning_rate_at
from musicvae.pattern import hits_from_tokens
from musicvae.training import checkpoint as ckpt
from musicvae.training.augment import BODY_MASK, CYMBAL_MASK, augment_batch, corrupt, swap_bits, training_batch
from musicvae.training.loop import train

TINY = "tiny-hier-drums_4bar"
ALL_AUG = ("aug_layer_mix=1.0,aug_timekeeper_swap=0.5,aug_tom_permute=0.5,aug_crash_ride_swap=0.5,"
           "aug_bar_recombine=0.5,denoise_prob=0.5")



def test_reference_config_sees_its_windows_untouched(small_data):
    tokens = load_split(small_data, "train").tokens[:16]
    targets, encoder_view = training_batch(tokens, get_config("hier-drums_4bar_small").hparams, 0, 7)
    assert targets is tokens and encoder_view is tokens


def test_augmentation_is_a_pure_function_of_seed_and_step(small_data):
    tokens = load_split(small_data, "train").tokens[:32]
    hp = get_config(TINY, ALL_AUG).hparams
    a, b, c = (training_batch(tokens, hp, 0, step) for step in (5, 5, 6))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])
    assert not np.array_equal(a[0], a[1])  # denoising: the encoder sees another window than the target


def test_layer_mix_keeps_the_body_and_takes_a_partners_cymbals(small_data):
    tokens = load_split(small_data, "train").tokens[:32].astype(np.int64)
    hp = get_config(TINY, "aug_layer_mix=1.0").hparams
    mixed = augment_batch(tokens, hp, np.random.default_rng(0))
    assert np.array_equal(mixed & BODY_MASK, tokens & BODY_MASK)
    cymbals = {row.tobytes() for row in (tokens & CYMBAL_MASK)}
    assert all(row.tobytes() in cymbals for row in mixed & CYMBAL_MASK)
    assert not np.array_equal(mixed, tokens)


def test_swaps_and_recombined_bars_keep_the_hits_they_move(small_data):
    tokens = load_split(small_data, "train").tokens[:32].astype(np.int64)
    assert np.array_equal(swap_bits(swap_bits(tokens, 2, 8), 2, 8), tokens)
    hp = get_config(TINY, "aug_timekeeper_swap=1.0").hparams
    swapped = hits_from_tokens(augment_batch(tokens, hp, np.random.default_rng(0)))
    original = hits_from_tokens(tokens)
    assert np.array_equal(swapped[..., 2], original[..., 8]) and np.array_equal(swapped[..., 8], original[..., 2])
    hp = get_config(TINY, "aug_bar_recombine=1.0").hparams
    recombined = augment_batch(tokens, hp, np.random.default_rng(1))
    for new, old in zip(recombined.reshape(-1, 4, 16), tokens.reshape(-1, 4, 16)):
        assert all(any(np.array_equal(bar, o) for o in old) for bar in new)


def test_denoising_corrupts_only_the_encoder_view(small_data):
    tokens = load_split(small_data, "train").tokens[:32].astype(np.int64)
    hp = get_config(TINY, "denoise_prob=1.0,denoise_drop=1.0,denoise_add=0.0,denoise_shift=0.0").hparams
    assert (corrupt(tokens, hp, np.random.default_rng(0)) == 0).all()  # every hit dropped
    hp = get_config(TINY, "denoise_prob=1.0,denoise_drop=0.0,denoise_add=0.0,denoise_shift=1.0").hparams
    moved = hits_from_tokens(corrupt(tokens, hp, np.random.default_rng(0)))
    original = hits_from_tokens(tokens)
    assert not np.array_equal(moved, original)
    # every moved hit lies one step away from an original one of the same drum
    neighbours = np.roll(original, 1, axis=1) | np.roll(original, -1, axis=1)
    assert not (moved & ~neighbours).any()


def test_augmented_training_resumes_exactly(small_data, tmp_path):
    config = get_config(TINY, ALL_AUG + ",dropout_keep_prob=0.8,weight_decay=0.01")
    train(config, tmp_path / "straight", small_data, num_steps=6, progress=False)
    train(config, tmp_path / "resumed", small_data, num_steps=3, progress=False)
    train(config, tmp_path / "resumed", small_data, num_steps=6, progress=False)
    straight = ckpt.read_tensors(ckpt.latest_checkpoint(tmp_path / "straight") / ckpt.MODEL_FILE)
    resumed = ckpt.read_tensors(ckpt.latest_checkpoint(tmp_path / "resumed") / ckpt.MODEL_FILE)
    for name in straight:
        assert torch.allclose(straight[name], resumed[name], atol=1e-6), name


def test_cosine_schedule_warms_up_and_ends_at_the_floor():
    hp = get_config(TINY, "lr_schedule=cosine,lr_total_steps=100,warmup_steps=10,learning_rate=0.001").hparams
    assert learning_rate_at(hp, 0) == 0.001 / 10
    assert learning_rate_at(hp, 9) == 0.001
    assert abs(learning_rate_at(hp, 55) - (0.001 + 1e-5) / 2) < 1e-9
    assert learning_rate_at(hp, 100) == learning_rate_at(hp, 10**6) == hp.min_learning_rate


def test_glorot_conductor_init_lets_z_move_the_bars():
    from musicvae.model.network import MusicVAE

    z = torch.randn(8, 16)
    spreads = {}
    for init in ("spec", "glorot"):
        torch.manual_seed(0)
        model = MusicVAE(get_config(TINY, f"conductor_init={init}").hparams).eval()
        spreads[init] = float(model.contexts(z).detach().std(0).mean())
    assert spreads["glorot"] > 20 * spreads["spec"]


def test_best_validation_checkpoint_is_kept(small_data, tmp_path):
    config = get_config(TINY, "learning_rate=0.01")
    train(config, tmp_path / "run", small_data, num_steps=8, eval_every_steps=2, eval_examples=8, progress=False)
    curve = [json.loads(line) for line in (tmp_path / "run" / "curve.jsonl").read_text().splitlines()]
    best = min(curve, key=lambda row: row["r_loss"])
    meta = ckpt.read_meta(tmp_path / "run" / "best")
    assert meta["step"] == best["step"]
    assert meta["metrics"]["validation"]["r_loss"] == best["r_loss"]


def test_nearest_windows_matches_brute_force(small_data):
    hits = hits_from_tokens(load_split(small_data, "train").tokens.astype(np.int64))
    queries, corpus = hits[:7], hits[7:]
    index, distance = nearest_windows(queries, corpus, chunk=3)
    brute = (queries[:, None] != corpus[None]).sum(axis=(2, 3))
    assert np.array_equal(distance, brute.min(1))
    assert np.array_equal(brute[np.arange(7), index], brute.min(1))
    exact = retrieval_baseline(corpus[:5], corpus)
    assert exact["hit_f1"] == 1.0 and exact["query_hamming_to_nearest_train"] == 0


def test_degenerate_reasons_and_bar_repetition():
    groove = np.zeros((1, 64, 9), bool)
    groove[0, ::4, 0] = groove[0, 4::8, 1] = groove[0, ::2, 2] = True  # kick, backbeat, 8th hats
    assert not degenerate_mask(groove, densest=200)["any"].any()
    assert bar_repetition(groove) == 1.0
    roll = groove.copy()
    roll[0, 16:48, 1] = True  # two whole bars of 16th snare
    assert degenerate_mask(roll, 200)["endless_roll"].all()
    one_bar_fill = groove.copy()
    one_bar_fill[0, 48:64, 1] = True  # a one-bar fill is music
    assert not degenerate_mask(one_bar_fill, 200)["any"].any()
    no_backbeat = groove.copy()
    no_backbeat[0, 16:48, :2] = False
    assert degenerate_mask(no_backbeat, 200)["bars_without_kick_and_snare"].all()
    assert degenerate_mask(groove, densest=5)["saturated"].all()
    assert degenerate_mask(np.zeros((1, 64, 9), bool), 200)["empty"].all()
