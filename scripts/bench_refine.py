"""Refined encoding against the plain encoder: hit F1 of the greedy reconstruction, time, |z|.

    .venv/bin/python scripts/bench_refine.py [--checkpoint DIR] [--windows 64] [--split test]

One groove at a time (what the app does for an upload), for each step budget and for the app's
1-second time budget; |z| is compared with the 99th percentile of the training mus' norms that
the refinement projects onto. Prints a Markdown table (figures in README "Refined encoding").

``--midi PATH ...``: grooves from MIDI files (or folders of them) instead of a GMD split, read by the
app's loader: up to ``--per_file`` 4-bar windows of each file, spread over the file, those with at
least 8 hits (public drum MIDI from outside GMD: see docs/models.md).

``--ceiling``: how far refinement can go at all, with no time budget: all windows in one batch,
``--budgets`` steps (e.g. 100,300,1000), inside the ball and without it (use ``--split validation``).
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
    parser.add_argument("--ceiling", action="store_true", help="batched, no time budget, with and without the ball")
    parser.add_argument("--midi", type=Path, nargs="+", help="MIDI files or folders instead of a GMD split")
    parser.add_argument("--per_file", type=int, default=2, help="windows per MIDI file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = TrainedModel.load(args.checkpoint or shipped_checkpoint(DEFAULT_INTERPOLATE_MODEL))
    if args.midi:
        grooves, source = midi_windows(args.midi, args.per_file), "MIDI"
    else:
        tokens = load_split(args.examples_path, args.split).tokens
        chosen = np.random.default_rng(args.seed).choice(len(tokens), min(args.windows, len(tokens)), replace=False)
        grooves, source = [DrumPattern.from_tokens(tokens[i]) for i in np.sort(chosen)], args.split
    limit = model.mu_norm_limit
    print(f"model {model.name} step {model.meta['step']}, {len(grooves)} {source} windows, "
          f"{args.threads} threads, training mu norm p99 {limit}")
    if args.ceiling:
        ceiling(model, grooves, [int(b) for b in args.budgets.split(",")], limit)
        return
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


def midi_windows(paths: list[Path], per_file: int) -> list[DrumPattern]:
    """Up to ``per_file`` windows of each file (evenly spread, >= 8 hits), as the app reads an upload."""
    from musicvae.midi.loader import InputError, load_grooves

    files = sorted(f for p in paths for f in ([p] if p.is_file() else p.rglob("*.mid")))
    grooves = []
    for file in files:
        try:
            windows = [w for w in load_grooves(file.read_bytes(), file.name).windows if w.num_hits >= 8]
        except InputError as error:
            print(f"skipped {file.name}: {error}")
            continue
        picks = np.unique(np.linspace(0, len(windows) - 1, min(per_file, len(windows))).round().astype(int))
        grooves += [windows[i] for i in picks] if windows else []
    return grooves


def ceiling(model: TrainedModel, grooves: list[DrumPattern], budgets: list[int], limit: float | None) -> None:
    print("| refinement | steps | hit F1 (mean, before -> after) | exact | mean / max |z| | seconds (batch) |")
    print("|---|---|---|---|---|---|")
    for label, max_norm in (("inside the ball", limit), ("no ball", float("inf"))):
        for steps in budgets:
            started = time.perf_counter()
            refine = RefineSettings(steps=steps, max_norm=max_norm, check_every=25, time_budget_s=None)
            _, info = model.encode_refined(grooves, refine)
            f1 = np.array(info["hit_f1"])
            print(f"| {label} | {steps} | {np.mean(info['hit_f1_before']):.3f} -> {f1.mean():.3f} | "
                  f"{np.mean(f1 == 1.0):.0%} | {np.mean(info['norm']):.1f} / {max(info['norm']):.1f} | "
                  f"{time.perf_counter() - started:.0f} |", flush=True)


if __name__ == "__main__":
    main()
