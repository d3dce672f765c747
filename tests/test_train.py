"""Training: it learns, checkpoints restore exactly, runs resume, kill -9 loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import torch

from musicvae.api import TrainedModel
from musicvae.configs import get_config
from musicvae.data.storage import load_split
from musicvae.training import checkpoint as ckpt
from musicvae.training.evaluation import evaluate
from musicvae.training.loop import train

TINY = "tiny-hier-drums_4bar"


def test_tiny_model_overfits_a_few_windows(small_data, tmp_path):
    config = get_config(TINY, "batch_size=4,z_size=8,enc_rnn_size=[64],dec_rnn_size=[64],learning_rate=0.01")
    tokens = load_split(small_data, "test").tokens[:4]
    subset = tmp_path / "subset"
    subset.mkdir()
    (subset / "manifest.json").write_text((small_data / "manifest.json").read_text())
    index = np.zeros(4, np.int32)
    np.savez(subset / "train.npz", tokens=tokens, file_index=index, start_bar=np.arange(4, dtype=np.int32))
    model_before = evaluate(_fresh(config), tokens)
    train(config, tmp_path / "run", subset, num_steps=150, checkpoint_secs=1e9, progress=False)
    trained = TrainedModel.load(tmp_path / "run").model
    after = evaluate(trained, tokens)
    assert after["r_loss"] < 0.5 * model_before["r_loss"]
    assert after["accuracy"] > 0.8 > model_before["accuracy"]
    assert after["hit_f1"] > 0.6


def _fresh(config):
    from musicvae.model.network import MusicVAE

    torch.manual_seed(0)
    return MusicVAE(config.hparams).eval()


def test_checkpoint_round_trip_gives_identical_outputs(small_data, tmp_path):
    config = get_config(TINY)
    train(config, tmp_path / "run", small_data, num_steps=3, progress=False)
    folder = ckpt.latest_checkpoint(tmp_path / "run")
    assert folder.name == "step-00000003"
    assert not any(p.suffix == ".pkl" for p in folder.iterdir())
    a, b = TrainedModel.load(folder), TrainedModel.load(folder)
    z = torch.randn(3, a.z_size)
    assert [p.to_tokens().tolist() for p in a.decode(z, 0.8, seed=5)] == [
        p.to_tokens().tolist() for p in b.decode(z, 0.8, seed=5)]
    for (name, x), (_, y) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(x, y), name


def test_resume_continues_exactly(small_data, tmp_path):
    config = get_config(TINY)
    train(config, tmp_path / "straight", small_data, num_steps=8, progress=False)
    train(config, tmp_path / "resumed", small_data, num_steps=5, progress=False)
    train(config, tmp_path / "resumed", small_data, num_steps=8, progress=False)
    assert ckpt.read_meta(ckpt.latest_checkpoint(tmp_path / "resumed"))["step"] == 8
    straight = TrainedModel.load(tmp_path / "straight").model.state_dict()
    resumed = TrainedModel.load(tmp_path / "resumed").model.state_dict()
    for name in straight:
        assert torch.allclose(straight[name], resumed[name], atol=1e-6), name


def test_kill_9_never_leaves_a_broken_checkpoint(small_data, tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "musicvae.cli", "train", "--config", TINY, "--run_dir", str(run),
           "--examples_path", str(small_data), "--num_steps", "100000", "--checkpoint_secs", "0",
           "--num_threads", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while len(ckpt.list_checkpoints(run)) < 3 and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.37)  # land somewhere inside a write
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    latest = ckpt.latest_checkpoint(run)
    assert latest is not None
    saved_step = ckpt.read_meta(latest)["step"]
    TrainedModel.load(run)  # loads: no half-written files in a complete checkpoint
    result = subprocess.run(cmd[:-4] + ["--num_steps", str(saved_step + 2), "--num_threads", "1"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"resuming from {latest.name} (step {saved_step})" in result.stdout
    assert ckpt.read_meta(ckpt.latest_checkpoint(run))["step"] == saved_step + 2


def test_refuses_too_few_examples_for_a_batch(small_data, tmp_path):
    import pytest

    from musicvae.training.loop import TrainingError

    with pytest.raises(TrainingError, match="batch_size"):
        train(get_config(TINY, "batch_size=100000"), tmp_path / "r", small_data, 1, progress=False)


def test_init_from_a_model_folder_continues_its_step(small_data, tmp_path):
    config = get_config(TINY)
    train(config, tmp_path / "first", small_data, num_steps=3, progress=False)
    shipped = ckpt.latest_checkpoint(tmp_path / "first")
    train(config, tmp_path / "second", small_data, num_steps=5, progress=False, init_from=shipped)
    assert ckpt.read_meta(ckpt.latest_checkpoint(tmp_path / "second"))["step"] == 5
