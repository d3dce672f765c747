"""Refined encoding against the plain encoder: hit F1 of the greedy reconstruction, time, |z|.

    .venv/bin/python scripts/bench_refine.py [--checkpoint DIR] [--windows 64] [--split test]

One groove at a time (what the app does for an upload), for each step budget and for the app's
1-second time budget; |z| is compared with the 99th percentile of the training mus' norms that
the refinement projects onto. Prints a Markdown table (figures in README "Refined encoding").
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from musicvae.api import DEFAULT_INTERPOLATE_MODEL, TrainedModel, shipped_checkpoint
from musicvae.data.storage import load_split
from musicvae.model.refine import RefineSettings
from musicvae.pattern import DrumPattern


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--examples_path", type=Path, default=Path("data/gmd"))
    parser.add_argument("--split", default="test")
    parser.add_argument("--windows", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budgets", default="25,50,100,200", help="step budgets to measure, comma-separated")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = TrainedModel.load(args.checkpoint or shipped_checkpoint(DEFAULT_INTERPOLATE_MODEL))
    tokens = load_split(args.examples_path, args.split).tokens
    chosen = np.random.default_rng(args.seed).choice(len(tokens), min(args.windows, len(tokens)), replace=False)
    grooves = [DrumPattern.from_tokens(tokens[i]) for i in np.sort(chosen)]
    limit = model.mu_norm_limit
    print(f"model {model.name} step {model.meta['step']}, {len(grooves)} {args.split} windows, "
          f"{args.threads} threads, training mu norm p99 {limit}")
    print("| encoding | hit F1 (mean) | exact | seconds per groove (median / p95) | mean |z| | max |z| |")
    print("|---|---|---|---|---|---|")
    settings = [("plain encoder", None)] + [
        (f"refined, {n} steps", RefineSettings(steps=n, time_budget_s=None))
        for n in (int(b) for b in args.budgets.split(","))
    ] + [("refined, 1 s budget (app)", RefineSettings(steps=200, time_budget_s=1.0))]
    for label, refine in settings:
        f1s, seconds, norms = [], [], []
        for groove in grooves:
            started = time.perf_counter()
            if refine is None:
                z = model.encode([groove])[1]
                f1 = None
            else:
                z, info = model.encode_refined([groove], refine)
                f1 = info["hit_f1"][0]
            seconds.append(time.perf_counter() - started)
            if f1 is None:
                recon = model.decode(z, 0.0)[0]
                tp = int((groove.hits & recon.hits).sum())
                f1 = 2 * tp / max(int(groove.hits.sum() + recon.hits.sum()), 1)
            f1s.append(f1)
            norms.append(float(z.norm()))
        timing = f"{np.median(seconds):.2f} / {np.percentile(seconds, 95):.2f}"
        print(f"| {label} | {np.mean(f1s):.3f} | {np.mean(np.array(f1s) == 1.0):.0%} | {timing} | "
              f"{np.mean(norms):.1f} | {max(norms):.1f} |", flush=True)


if __name__ == "__main__":
    main()
