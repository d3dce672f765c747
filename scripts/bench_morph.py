"""Even morphs against equal steps of t: how evenly each interpolation step changes the groove.

    .venv/bin/python scripts/bench_morph.py [--checkpoint DIR] [--steps 7]

Pairs consecutive preset grooves (assets/presets, 41 grooves -> 20 pairs), interpolates each pair
greedily (temperature 0) with slerp, and counts the hits that change from step to step. The
figure is max/min change per morph (1 = perfectly even; a step that changes nothing counts as 0.5).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from musicvae.api import DEFAULT_INTERPOLATE_MODEL, TrainedModel, shipped_checkpoint
from musicvae.app.core import load_presets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--steps", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = TrainedModel.load(args.checkpoint or shipped_checkpoint(DEFAULT_INTERPOLATE_MODEL))
    grooves = [p.pattern for p in load_presets()]
    ratios: dict[str, list[float]] = {"uniform": [], "even": []}
    seconds: dict[str, list[float]] = {"uniform": [], "even": []}
    for a, b in zip(grooves[0::2], grooves[1::2]):
        for spacing in ratios:
            started = time.perf_counter()
            path = model.interpolate(a, b, args.steps, temperature=0.0, spacing=spacing)
            seconds[spacing].append(time.perf_counter() - started)
            changes = [int((x.hits != y.hits).sum()) for x, y in zip(path[:-1], path[1:])]
            ratios[spacing].append(max(changes) / max(min(changes), 0.5))
    print(f"model {model.name} step {model.meta['step']}, {len(ratios['even'])} preset pairs, {args.steps} steps")
    print("| spacing | max/min change: median | max | pairs with max <= 2x min | seconds per morph (median) |")
    print("|---|---|---|---|---|")
    for spacing, values in ratios.items():
        v = np.array(values)
        print(f"| {spacing} | {np.median(v):.2f} | {v.max():.1f} | {np.mean(v <= 2):.0%} | "
              f"{np.median(seconds[spacing]):.2f} |")


if __name__ == "__main__":
    main()
