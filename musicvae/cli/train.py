"""``musicvae train``: train or evaluate a model; re-running resumes (``musicvae.training``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from musicvae.cli.common import positive_int


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train or evaluate a model (resumes automatically)")
    p.add_argument("--config", required=True, help="a registered config name (see `musicvae info --list`)")
    p.add_argument("--run_dir", required=True, type=Path, help="checkpoints and TensorBoard logs go here")
    p.add_argument("--mode", choices=["train", "eval"], default="train")
    p.add_argument("--examples_path", required=True, type=Path,
                   help="a `musicvae prepare` output folder, or a MIDI folder (prepared into RUN_DIR/data)")
    p.add_argument("--num_steps", type=positive_int, default=200000, help="total steps to train (default 200000)")
    p.add_argument("--hparams", default="", help="overrides, e.g. batch_size=64,free_bits=96")
    p.add_argument("--eval_split", default="validation", help="split for --mode eval (default validation)")
    p.add_argument("--checkpoint_secs", type=float, default=60.0, help="seconds between checkpoints (default 60)")
    p.add_argument("--checkpoints_to_keep", type=positive_int, default=3)
    p.add_argument("--eval_every_steps", type=int, default=0, help="validation metrics every N steps (0 = off)")
    p.add_argument("--eval_examples", type=positive_int, default=512, help="validation windows for that check")
    p.add_argument("--log_every_steps", type=positive_int, default=10)
    p.add_argument("--num_threads", type=positive_int, default=None,
                   help="torch threads (default: all cores, shared out between torchrun's processes)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="where to train; auto = a GPU when one is visible (default auto)")
    p.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                   help="bfloat16 autocast for the forward pass, fp32 master weights (default: on where the GPU or "
                        "CPU has bfloat16 units, e.g. avx512_bf16/amx_bf16; --no-bf16: float32)")
    p.add_argument("--init_from", type=Path, default=None,
                   help="start a new run from a model folder's weights and step (e.g. a shipped checkpoint)")
    p.add_argument("--shuffle_shards", type=positive_int, default=8,
                   help="sharded data: shards mixed together in the shuffle buffer (default 8)")
    p.set_defaults(run=run)


JEMALLOC_OFF = "MUSICVAE_JEMALLOC"  # =0: train with glibc malloc


def reexec_with_jemalloc(argv: list[str]) -> None:
    """Run this ``musicvae train`` again with jemalloc preloaded, when it is installed and not loaded yet.

    PyTorch's CPU training allocates and frees large buffers every step; jemalloc (kept mapped, as
    ``musicvae bench`` does) makes that ~1.4x faster in fp32 (docs/performance.md).  An ``exec`` keeps
    the process id, so torchrun and nohup see the same process.  ``MUSICVAE_JEMALLOC=0`` turns it off."""
    from musicvae.evaluation.speed import JEMALLOC, JEMALLOC_CONF

    if os.environ.get(JEMALLOC_OFF) == "0" or "jemalloc" in os.environ.get("LD_PRELOAD", "") or not JEMALLOC.exists():
        return
    env = {**os.environ, "LD_PRELOAD": f"{JEMALLOC} {os.environ.get('LD_PRELOAD', '')}".strip(),
           "MALLOC_CONF": os.environ.get("MALLOC_CONF", JEMALLOC_CONF)}
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, "-m", "musicvae.cli", *argv], env)


def run(args) -> int:
    import torch

    from musicvae.configs import get_config
    from musicvae.training.distributed import default_num_threads

    torch.set_num_threads(args.num_threads or default_num_threads())
    config = get_config(args.config, args.hparams)
    data_dir = _data_dir(args)
    if args.mode == "eval":
        from musicvae.data.storage import load_split
        from musicvae.training.checkpoint import load_model
        from musicvae.training.evaluation import evaluate, evaluate_grooves

        model, meta = load_model(args.run_dir)
        split = load_split(data_dir, args.eval_split)
        if model.hp.output == "groove":
            figures = evaluate_grooves(model, split.groove_frames(), batch_size=256, qpm=split.qpm)
        else:
            figures = evaluate(model, split.tokens, batch_size=256)
        result = {"config": meta["config"], "step": meta["step"], "split": args.eval_split, **figures}
        print(json.dumps(result))
        return 0
    from musicvae.training.loop import train

    result = train(config, args.run_dir, data_dir, args.num_steps, args.checkpoint_secs, args.checkpoints_to_keep,
                   args.eval_every_steps, args.eval_examples, args.log_every_steps, args.seed,
                   device=args.device, bf16=args.bf16, shuffle_shards=args.shuffle_shards, init_from=args.init_from)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks for all
        print(json.dumps(result))
    return 0


def _data_dir(args) -> Path:
    if (args.examples_path / "manifest.json").exists():
        return args.examples_path
    from musicvae.data.prepare import prepare
    from musicvae.data.sources import PrepareSettings

    data_dir = args.run_dir / "data"
    if not (data_dir / "manifest.json").exists():
        print(f"preparing {args.examples_path} into {data_dir}")
        prepare(args.examples_path, data_dir, PrepareSettings())
    return data_dir
