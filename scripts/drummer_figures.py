"""Print (and save) the drummer figures of trained models: real windows and 512 samples per temperature,
plain and playable (``musicvae.evaluation.report.drummer_report``), without the rest of ``musicvae report``.

    PYTHONPATH=. .venv/bin/python scripts/drummer_figures.py checkpoints/hier-drums_4bar_small_aug \
        --examples_path data/gmd --output runs/drummer_lokl.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from musicvae.api import TrainedModel
from musicvae.data.storage import load_split
from musicvae.evaluation.playability import drummer_table
from musicvae.evaluation.report import drummer_report
from musicvae.pattern import hits_from_tokens


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--examples_path", type=Path, default=Path("data/gmd"))
    parser.add_argument("--split", default="test")
    parser.add_argument("--num_samples", type=int, default=512)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = TrainedModel.load(args.checkpoint)
    reference = hits_from_tokens(load_split(args.examples_path, args.split).tokens.astype(np.int64))
    train = hits_from_tokens(load_split(args.examples_path, "train").tokens.astype(np.int64))
    result = drummer_report(model, reference, train, args.num_samples)
    if args.output:
        args.output.write_text(json.dumps(result, indent=1))
    print("\n".join(drummer_table(result)))


if __name__ == "__main__":
    main()
