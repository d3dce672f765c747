#!/usr/bin/env python3
"""Training throughput with 1 process vs 2 processes (torchrun + gloo) on this machine.

Runs the real ``musicvae train`` command for each set-up, with the same global batch:

- ``1 proc x N threads``: one process, ``--num_threads N`` (N = all cores);
- ``1 proc x 1 thread``: one process, one thread;
- ``P procs x 1 thread``: ``torchrun --nproc_per_node P``, per-process batch = global batch / P.

Each run logs every step to TensorBoard; the time is taken from the event wall-clock stamps between
the end of the warm-up steps and the last step, so start-up (imports, process group, data) is not
counted.  Example::

    .venv/bin/python scripts/bench_ddp.py --config hier-drums_4bar_small --global_batch 64 --steps 10
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def step_times(run_dir: Path) -> dict[int, float]:
    """step -> wall time of its 'loss' scalar (rank 0 logs after every rank finished that step)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    return {e.step: e.wall_time for e in events.Scalars("loss")}


def run(name: str, procs: int, threads: int, args, root: Path) -> dict:
    run_dir = root / name.replace(" ", "_")
    batch = args.global_batch // procs
    train = ["train", "--config", args.config, "--hparams", f"batch_size={batch}", "--examples_path",
             str(args.examples_path), "--run_dir", str(run_dir), "--num_steps", str(args.warmup + args.steps),
             "--num_threads", str(threads), "--checkpoint_secs", "1e9", "--log_every_steps", "1",
             "--device", "cpu"]
    if procs == 1:
        cmd = [sys.executable, "-m", "musicvae.cli", *train]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(procs),
               "-m", "musicvae.cli", *train]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{name} failed:\n{result.stderr[-3000:]}")
    times = step_times(run_dir)
    first, last = args.warmup, args.warmup + args.steps
    seconds = times[last] - times[first]
    return {"setup": name, "processes": procs, "threads_each": threads, "batch_each": batch,
            "global_batch": args.global_batch, "timed_steps": args.steps, "seconds": round(seconds, 2),
            "steps_per_s": round(args.steps / seconds, 3),
            "windows_per_s": round(args.steps * args.global_batch / seconds, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="hier-drums_4bar_small")
    parser.add_argument("--examples_path", type=Path, default=REPO / "data" / "gmd")
    parser.add_argument("--global_batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per set-up")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--procs", type=int, default=2, help="processes for the torchrun set-up")
    parser.add_argument("--only", choices=["all", "single", "ddp"], default="all")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    setups = []
    if args.only in ("all", "single"):
        setups.append((f"1 proc x {cores} threads", 1, cores))
    if args.only in ("all", "ddp"):
        setups.append((f"{args.procs} procs x 1 thread", args.procs, 1))
    if args.only in ("all", "single"):
        setups.append(("1 proc x 1 thread", 1, 1))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, procs, threads in setups:
            rows.append(run(name, procs, threads, args, Path(tmp)))
            print(json.dumps(rows[-1]), flush=True)
    load = os.getloadavg()
    print(f"\n{args.config}, global batch {args.global_batch}, {cores} cores, load average {load[0]:.2f} "
          f"{load[1]:.2f} {load[2]:.2f}")
    print(f"{'set-up':<22} {'batch/proc':>10} {'steps/s':>8} {'windows/s':>10}")
    for row in rows:
        print(f"{row['setup']:<22} {row['batch_each']:>10} {row['steps_per_s']:>8} {row['windows_per_s']:>10}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "loadavg": load}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
