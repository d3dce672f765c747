"""``musicvae export``: a training checkpoint -> a lean model folder (``musicvae.training.checkpoint``)."""

from __future__ import annotations

import json
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="copy a training checkpoint into a lean model folder")
    p.add_argument("--checkpoint", required=True, type=Path, help="a run dir (newest checkpoint) or step folder")
    p.add_argument("--output_dir", required=True, type=Path, help="e.g. checkpoints/hier-drums_4bar_small")
    p.add_argument("--metrics", type=Path, default=None, help="a `musicvae report` JSON to embed")
    p.add_argument("--half", action="store_true", help="store weights as float16")
    p.set_defaults(run=run)


def run(args) -> int:
    from musicvae.training.checkpoint import export_model

    metrics = json.loads(args.metrics.read_text()) if args.metrics else None
    print(export_model(args.checkpoint, args.output_dir, metrics, args.half))
    return 0
