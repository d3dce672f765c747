"""Distributed training on the CPU (gloo): 2 processes = 1 process with the same global batch,
resume under torchrun, and a clean error when ranks disagree.

Starting processes that import torch is what costs time on a small CI machine, so one pair of
spawned ranks runs every scenario in turn (a new process group for each), and torchrun itself is
launched once.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from musicvae.api import TrainedModel
from musicvae.configs import get_config
from musicvae.model.network import MusicVAE
from musicvae.training import checkpoint as ckpt
from musicvae.training.distributed import resolve_device, step_seed
from musicvae.training.loop import TrainingError, cpu_has_bf16, train

TINY = "tiny-hier-drums_4bar"
SAME_STEPS = 4


@contextlib.contextmanager
def fixed_noise():
    """The reparameterization noise (compute_loss's ``torch.randn(..., generator=...)``) made one fixed
    vector for every example.  Under DDP each rank draws its own noise, so two processes equal one
    process only in distribution; with the noise fixed the comparison checks the rest exactly:
    data slicing, gradient averaging, clipping and the optimizer."""
    randn = torch.randn

    def fixed(*args, **kwargs):
        if "generator" not in kwargs:
            return randn(*args, **kwargs)
        shape = args[0] if args else kwargs["size"]
        return torch.linspace(-1.0, 1.0, shape[-1], device=kwargs.get("device")).expand(*shape).contiguous()

    torch.randn = fixed
    try:
        yield
    finally:
        torch.randn = randn


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(rank: int, world: int, phases: list[dict], report: str) -> None:
    """One rank: for each phase, join a group through torchrun's environment variables and train()."""
    torch.set_num_threads(1)
    outcomes = {}
    for phase in phases:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(phase["port"]), RANK=str(rank),
                          WORLD_SIZE=str(world), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world))
        job = phase["jobs"][rank]
        try:
            with fixed_noise() if phase["fixed_noise"] else contextlib.nullcontext():
                result = train(get_config(TINY, job["hparams"]), Path(job["run_dir"]), Path(job["data"]),
                               phase["steps"], checkpoint_secs=1e9, progress=False)
            outcomes[phase["name"]] = {"ok": True, "step": result["step"]}
        except RuntimeError as error:
            outcomes[phase["name"]] = {"ok": False, "error": str(error), "type": type(error).__name__}
    Path(f"{report}.{rank}").write_text(json.dumps(outcomes))


@pytest.fixture(scope="module")
def ranks(small_data, tmp_path_factory) -> tuple[Path, list[dict]]:
    """Two gloo ranks (torch.multiprocessing spawn) through every scenario; their outcomes per rank."""
    root = tmp_path_factory.mktemp("ddp")
    data = str(small_data)

    def phase(name, steps, jobs, fixed_noise=False):
        return {"name": name, "steps": steps, "jobs": jobs, "fixed_noise": fixed_noise, "port": _free_port()}

    both = {"hparams": "batch_size=4", "data": data}
    phases = [
        phase("same", SAME_STEPS, [dict(both, run_dir=str(root / "ddp"))] * 2, fixed_noise=True),
        phase("disagree", 1, [dict(both, run_dir=str(root / "x")), dict(both, run_dir=str(root / "x"),
                                                                           hparams="batch_size=4,z_size=8")]),
        phase("missing", 1, [dict(both, run_dir=str(root / "y")), dict(both, run_dir=str(root / "y"),
                                                                          data=str(root / "nowhere"))]),
        phase("straight", 6, [dict(both, run_dir=str(root / "straight"))] * 2),
        phase("first_half", 3, [dict(both, run_dir=str(root / "resumed"))] * 2),
    ]
    context = mp.start_processes(_worker, args=(2, phases, str(root / "report")), nprocs=2, join=False,
                                 start_method="spawn")
    deadline = time.monotonic() + 240
    while not context.join(timeout=1.0):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("the ranks hung")
    return root, [json.loads((root / f"report.{rank}").read_text()) for rank in range(2)]


def test_two_processes_equal_one_with_the_same_global_batch(ranks, small_data, tmp_path):
    root, outcomes = ranks
    assert [o["same"] for o in outcomes] == [{"ok": True, "step": SAME_STEPS}] * 2
    with fixed_noise():
        train(get_config(TINY, "batch_size=8"), tmp_path / "single", small_data, SAME_STEPS, progress=False)
    single = TrainedModel.load(tmp_path / "single").model.state_dict()
    ddp = TrainedModel.load(root / "ddp").model.state_dict()
    torch.manual_seed(0)  # for scale: how far the steps moved the weights from train()'s initialization
    initial = MusicVAE(get_config(TINY).hparams).state_dict()
    moved = max(float((single[k] - initial[k]).abs().max()) for k in single)
    worst = max(float((single[k] - ddp[k]).abs().max()) for k in single)
    assert moved > 1e-3
    assert worst < 1e-5, f"DDP and single-process parameters differ by {worst} (the updates moved them {moved})"
    # only rank 0 wrote: one set of checkpoints, one TensorBoard log
    assert [p.name for p in ckpt.list_checkpoints(root / "ddp")] == [f"step-{SAME_STEPS:08d}"]
    assert len(list((root / "ddp").glob("events.out.tfevents.*"))) == 1
    state = json.loads((ckpt.latest_checkpoint(root / "ddp") / ckpt.STATE_FILE).read_text())
    assert state["world_size"] == 2 and state["step"] == SAME_STEPS


def test_ranks_that_disagree_stop_with_one_line(ranks):
    _, outcomes = ranks
    for outcome in outcomes:
        disagree, missing = outcome["disagree"], outcome["missing"]
        assert not disagree["ok"] and disagree["type"] == "TrainingError"
        assert disagree["error"].startswith("rank 1 disagrees with rank 0 on hparams"), disagree["error"]
        assert not missing["ok"] and missing["error"].startswith("rank 1: ") and "nowhere" in missing["error"]
        assert "\n" not in disagree["error"] + missing["error"]


def test_resume_under_torchrun_continues_from_the_saved_step(ranks, small_data):
    root, outcomes = ranks
    assert all(o["straight"]["ok"] and o["first_half"] == {"ok": True, "step": 3} for o in outcomes)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "musicvae.cli", "train", "--config", TINY, "--hparams", "batch_size=4", "--device", "cpu",
           "--num_threads", "1", "--checkpoint_secs", "1e9", "--examples_path", str(small_data),
           "--run_dir", str(root / "resumed"), "--num_steps", "6",
           "--no-bf16"]  # as the straight run's train(): the CLI's default is bf16 where the CPU has it
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("resuming from step-00000003 (step 3)") == 1  # rank 0 alone speaks
    assert ckpt.read_meta(ckpt.latest_checkpoint(root / "resumed"))["step"] == 6
    a = TrainedModel.load(root / "straight").model.state_dict()
    b = TrainedModel.load(root / "resumed").model.state_dict()
    for name in a:  # the noise is a function of (seed, step, rank) under DDP: resuming changes nothing
        assert torch.allclose(a[name], b[name], atol=1e-6), name


def test_device_choice_and_bf16_guard(small_data, tmp_path):
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no GPU"):
            resolve_device("cuda")
        if not cpu_has_bf16():  # a CPU with bfloat16 units (AVX512-BF16/AMX) trains in bf16 instead
            with pytest.raises(TrainingError, match="--bf16 needs a GPU"):
                train(get_config(TINY), tmp_path / "bf16", small_data, 1, progress=False, bf16=True)
    assert len({step_seed(0, s, r) for s in range(50) for r in range(4)}) == 200
