"""``musicvae report``: model-card metrics, reconstruction on a split and prior samples
(``musicvae.evaluation.report``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from musicvae.cli.common import positive_int


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="model-card metrics: reconstruction on a split + prior samples "
                                      "(a groove model: humanize figures against baselines)")
    p.add_argument("--checkpoint", required=True, type=Path, help="a model folder or a run dir")
    p.add_argument("--examples_path", required=True, type=Path, help="a `musicvae prepare` output folder")
    p.add_argument("--split", default="test", help="reference split (default test)")
    p.add_argument("--num_samples", type=positive_int, default=512, help="prior samples per temperature")
    p.add_argument("--output", type=Path, default=None, help="also write the JSON here")
    p.add_argument("--gmd_root", type=Path, default=None, help="GMD folder: adds the CI regression probe")
    p.add_argument("--num_threads", type=positive_int, default=None)
    p.set_defaults(run=run)


def run(args) -> int:
    import torch

    from musicvae.evaluation.report import model_report
    from musicvae.training.checkpoint import read_meta, resolve_model_dir

    torch.set_num_threads(args.num_threads or os.cpu_count() or 1)
    if read_meta(resolve_model_dir(args.checkpoint))["hparams"].get("output") == "groove":
        from musicvae.evaluation.groove import humanize_report

        result = humanize_report(args.checkpoint, args.examples_path, args.split, gmd_root=args.gmd_root)
    else:
        result = model_report(args.checkpoint, args.examples_path, args.split, args.num_samples,
                              gmd_root=args.gmd_root)
    text = json.dumps(result)
    if args.output:
        from musicvae.fileio import atomic_write_text

        atomic_write_text(args.output, json.dumps(result, indent=1))
    print(text)
    return 0
