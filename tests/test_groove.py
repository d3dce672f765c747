"""Human feel (issue 17): the groove representation, the groove model, its training and humanize."""

from __future__ import annotations

import io

import mido
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from musicvae.api import GrooveModel, TrainedModel
from musicvae.configs import get_config
from musicvae.data.storage import load_split
from musicvae.midi.loader import load_grooves
from musicvae.midi.parse import file_windows
from musicvae.model.groove import GrooveVAE, build_model
from musicvae.model.objective import compute_loss
from musicvae.pattern import DrumPattern, groove_from_grids
from musicvae.training.augment import augment_batch, augment_grooves
from musicvae.training.loop import TrainingError, train

TINY = "tiny-groovae_4bar_humanize"
GROOVE_138 = "drummer1/eval_session/1_funk-groove1_138_beat_4-4.mid"


def _midi(notes: list[tuple[int, int, int]], ppq: int = 480, bpm: float = 120.0) -> bytes:
    """A one-track drum file from (tick, pitch, velocity) notes on channel 10."""
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0)])
    events = sorted([(t, 1, p, v) for t, p, v in notes] + [(t + ppq // 8, 0, p, 0) for t, p, v in notes])
    now = 0
    for tick, on, pitch, velocity in events:
        kind = "note_on" if on else "note_off"
        track.append(mido.Message(kind, note=pitch, velocity=velocity, channel=9, time=tick - now))
        now = tick
    midi = mido.MidiFile(ticks_per_beat=ppq)
    midi.tracks.append(track)
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


# -- representation ------------------------------------------------------------------------------------
def test_parser_measures_offsets_from_the_grid_and_keeps_the_loudest():
    ppq, step = 480, 120  # a 16th is 120 ticks
    notes = [(0, 36, 100), (4 * step + 30, 38, 90), (8 * step - 24, 42, 70), (8 * step + 12, 42, 50)]
    notes += [(s * step, 42, 60) for s in range(9, 64)]  # fill the 4 bars so the window exists
    [(_, window)] = file_windows(_midi(notes, ppq), 4)
    assert window.offsets[0, 0] == pytest.approx(0.0)
    assert window.offsets[4, 1] == pytest.approx(0.25)  # 30 ticks late = a quarter of a 16th
    assert window.velocities[8, 2] == 70  # two notes on the same cell: the loudest wins, with its offset
    assert window.offsets[8, 2] == pytest.approx(-0.2)


def test_offsets_survive_midi_round_trip_and_nothing_starts_before_zero():
    hits = np.zeros((64, 9), dtype=bool)
    hits[::4, 2] = True
    hits[0, 0] = True
    velocities = np.where(hits, 40 + (np.arange(64)[:, None] % 80), 0)
    offsets = np.where(hits, 0.3, 0.0)
    offsets[0, 0] = -0.4  # an early downbeat would start before 0
    pattern = DrumPattern(hits, velocities, qpm=100.0, offsets=offsets)
    assert pattern.onset_seconds().min() == 0.0
    midi = pattern.to_pretty_midi()
    starts = [n.start for n in midi.instruments[0].notes]
    assert min(starts) == 0.0
    step_seconds = 60 / 100 / 4
    hat_on_4 = next(n for n in midi.instruments[0].notes if n.pitch == 42 and n.start > 0.5 * step_seconds)
    assert hat_on_4.start == pytest.approx(4.3 * step_seconds, abs=1e-3)
    back = load_grooves(pattern.to_midi_bytes(), "x.mid").windows[0]
    assert back.same_hits(pattern)
    assert (back.velocity_grid() == pattern.velocity_grid()).all()
    kept = hits.copy()
    kept[0, 0] = False  # the clamped note comes back on the grid
    assert np.abs(back.offset_grid() - pattern.offset_grid())[kept].max() < 0.01


@settings(max_examples=30, deadline=None)
@given(arrays(bool, (64, 9)), arrays(np.uint8, (64, 9), elements=st.integers(1, 127)),
       arrays(np.float32, (64, 9), elements=st.floats(-0.5, 0.5, width=32)))
def test_groove_frames_round_trip(hits, velocities, offsets):
    pattern = DrumPattern(hits, np.where(hits, velocities, 0), offsets=offsets)
    frames = pattern.to_groove()
    assert frames.shape == (64, 27)
    assert (frames[:, 9:][np.tile(~hits, 2)] == 0).all()  # silent cells are all zero
    back = DrumPattern.from_groove(frames)
    assert back.same_hits(pattern)
    assert (back.velocity_grid() == pattern.velocity_grid()).all()
    assert np.allclose(back.offset_grid(), pattern.offset_grid(), atol=1e-6)
    assert (pattern.onset_seconds() >= 0).all()


def test_prepare_keeps_each_window_feel(small_data, gmd):
    split = load_split(small_data, "test")
    assert split.has_feel and split.qpm is not None
    expected = [w for _, w in file_windows((gmd / GROOVE_138).read_bytes())]
    assert len(split) == len(expected)
    for i in (0, len(split) - 1):
        got = split.pattern(i)
        assert got.same_hits(expected[i])
        assert (got.velocity_grid() == expected[i].velocity_grid()).all()
        assert np.abs(got.offset_grid() - expected[i].offset_grid()).max() <= 0.5 / 254 + 1e-6
        assert got.qpm == pytest.approx(138, abs=0.01)
    assert np.abs(split.groove_frames()[..., 18:]).max() > 0.1  # real offsets, not zeros


# -- model ---------------------------------------------------------------------------------------------
def _frames(n: int = 4) -> torch.Tensor:
    rng = np.random.default_rng(0)
    hits = rng.random((n, 64, 9)) < 0.2
    frames = groove_from_grids(hits, rng.integers(1, 128, hits.shape), rng.uniform(-0.5, 0.5, hits.shape))
    assert (frames[..., 9:][np.concatenate([~hits, ~hits], -1)] == 0).all()  # silent cells are zero
    return torch.from_numpy(frames)


def test_humanize_model_reads_hits_only_and_plays_them():
    torch.manual_seed(0)
    model = build_model(get_config(TINY).hparams).eval()
    assert isinstance(model, GrooveVAE)
    frames = _frames()
    quiet = frames.clone()
    quiet[..., 9:] = 0
    with torch.no_grad():
        assert torch.equal(model.encode_frames(frames)[0], model.encode_frames(quiet)[0])  # feel is hidden
        _, out = model.free_run_frames(model.encode_frames(frames)[0], 1.0, hits=frames[..., :9])
    assert torch.equal(out[..., :9], frames[..., :9])
    assert (out[..., 9:18][frames[..., :9] == 0] == 0).all()  # nothing but hits carry velocity
    with pytest.raises(ValueError, match="pass hits"):
        model.free_run_frames(torch.zeros(1, 16))


@pytest.mark.parametrize("controls", [False, True])
def test_groove_loss_counts_silent_cells_unless_the_hits_are_given(controls):
    """Spec §2.5: velocity and offset errors count on every cell, silent ones included (target 0). A model that
    reads the hits as controls plays silence exactly, so only the sounding cells cost anything."""
    torch.manual_seed(0)
    model = build_model(get_config(TINY, f"hits_as_controls={controls}").hparams).eval()
    frames = _frames()
    out = compute_loss(model, frames, step=10, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        model.core.output.bias[9:18] += 5.0  # push every velocity towards 1, silent cells included
    louder = compute_loss(model, frames, step=10, generator=torch.Generator().manual_seed(1))
    hits = frames[..., :9]
    silent_cost = float((1 - hits).sum(-1).mean()) * 0.5  # each silent cell goes from ~0.25 to ~0.99
    gained = float(louder["metrics/velocities_loss"] - out["metrics/velocities_loss"])
    assert gained > silent_cost if not controls else gained < silent_cost / 2
    total = float(out["metrics/hits_loss"] + out["metrics/velocities_loss"] + out["metrics/offsets_loss"]) * 64
    assert float(out["losses/r_loss"]) == pytest.approx(total, rel=1e-4)  # summed over time


def test_controls_are_never_dropped():
    """Input dropout hits the previous frame and the context, never the given hits (the groove to play)."""
    torch.manual_seed(0)
    model = build_model(get_config(TINY, "dropout_keep_prob=0.5").hparams).train()
    frames = _frames(2)
    seen = []
    model.core.rnn.layers[0].lstm.register_forward_hook(lambda mod, args, out: seen.append(args[0]))
    model.decode_outputs(torch.zeros(2, 16), frames)
    controls = seen[0][..., 27:36].reshape(2, 64, 9)
    assert torch.equal(controls, frames[..., :9])


def test_groove_augmentation_moves_feel_with_hits(small_data):
    hp = get_config(TINY).hparams.replace(aug_layer_mix=0.5, aug_timekeeper_swap=0.5, aug_tom_permute=0.5,
                                          aug_crash_ride_swap=0.5, aug_bar_recombine=0.5)
    split = load_split(small_data, "validation")
    frames, tokens = split.groove_frames(slice(0, 32)), split.tokens[:32]
    grooved = augment_grooves(frames, hp, np.random.default_rng(3))
    plain = augment_batch(tokens, hp, np.random.default_rng(3))
    assert all(DrumPattern.from_groove(g).to_tokens().tolist() == p.tolist() for g, p in zip(grooved, plain))
    hits = grooved[..., :9] > 0.5
    assert (grooved[..., 9:18][~hits] == 0).all() and (grooved[..., 18:][~hits] == 0).all()
    assert not np.array_equal(grooved, frames)


# -- training and the API ------------------------------------------------------------------------------
def test_tiny_groove_model_learns_and_humanizes(small_data, tmp_path):
    config = get_config(TINY, "learning_rate=0.01")
    seen = load_split(small_data, "train").groove_frames()  # a tiny model can only learn what it saw
    from musicvae.training.evaluation import evaluate_grooves

    torch.manual_seed(0)
    before = evaluate_grooves(build_model(config.hparams).eval(), seen)
    train(config, tmp_path / "run", small_data, num_steps=60, checkpoint_secs=1e9, progress=False,
          eval_every_steps=30, eval_examples=16)
    assert (tmp_path / "run" / "best" / "model.safetensors").exists()
    model = GrooveModel.load(tmp_path / "run")
    after = evaluate_grooves(model.model, seen)
    assert after["r_loss"] < 0.8 * before["r_loss"]
    assert after["velocity_mae"] < before["velocity_mae"]
    assert after["hit_f1"] == 1.0
    split = load_split(small_data, "test")
    grooves = [split.pattern(0), split.pattern(1).window(0, 2)]  # 4 bars and 2 bars
    played = model.humanize(grooves)
    assert [p.num_steps for p in played] == [64, 32]
    assert all(p.same_hits(g) for p, g in zip(played, grooves))
    assert np.unique(played[0].velocity_grid()[played[0].hits]).size >= 4
    assert model.humanize(grooves, 1.0, seed=3)[0].velocity_grid().tolist() == \
        model.humanize(grooves, 1.0, seed=3)[0].velocity_grid().tolist()
    with pytest.raises(ValueError, match="groove model"):
        TrainedModel.load(tmp_path / "run")


def test_groove_training_needs_the_feel(small_data, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "manifest.json").write_text((small_data / "manifest.json").read_text())
    with np.load(small_data / "train.npz") as arrays:
        np.savez(bare / "train.npz", tokens=arrays["tokens"], file_index=arrays["file_index"],
                 start_bar=arrays["start_bar"])
    with pytest.raises(TrainingError, match="re-run `musicvae prepare`"):
        train(get_config(TINY), tmp_path / "run", bare, num_steps=1, progress=False)


def test_hits_feedback_model_trains_exactly_what_it_plays():
    """With ``groove_feedback=hits`` the decoder never reads its own velocities/offsets back: teacher-forced
    outputs equal free-running ones, whatever feel the targets carry (no exposure bias)."""
    torch.manual_seed(0)
    model = build_model(get_config(TINY, "groove_feedback=hits").hparams).eval()
    frames = _frames(3)
    with torch.no_grad():
        z = model.encode_frames(frames)[0]
        forced = model.decode_outputs(z, frames)
        free, _ = model.free_run_frames(z, 0.0, hits=frames[..., :9])
    assert torch.allclose(forced, free, atol=1e-5)
    full = build_model(get_config(TINY).hparams).eval()
    full.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert not torch.allclose(full.decode_outputs(z, frames), full.free_run_frames(z, 0.0, hits=frames[..., :9])[0],
                                  atol=1e-3)
