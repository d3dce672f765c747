"""How long humanizing takes with the shipped groove model: one groove (Sample, an upload), a 7-step morph,
a 5 x 5 and an 11 x 11 grid (every cell in one call), on 1 and 2 torch threads.

    .venv/bin/python scripts/bench_humanize.py [--checkpoint DIR] [--repeats 5]

Prints a Markdown table of the median wall time per call (figures in README "Humanize").
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from musicvae.api import DEFAULT_HUMANIZE_MODEL, GrooveModel, shipped_checkpoint
from musicvae.data.storage import load_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--examples_path", type=Path, default=Path("data/gmd"))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    model = GrooveModel.load(args.checkpoint or shipped_checkpoint(DEFAULT_HUMANIZE_MODEL))
    split = load_split(args.examples_path, "validation")
    grooves = [split.pattern(i).quantized() for i in range(121)]
    print("| grooves per call | 1 thread (ms) | 2 threads (ms) |\n|---|---|---|")
    for n in (1, 7, 25, 121):
        cells = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            model.humanize(grooves[:n])  # warm-up
            times = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                model.humanize(grooves[:n])
                times.append(time.perf_counter() - started)
            cells.append(f"{1e3 * statistics.median(times):.0f}")
        print(f"| {n} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
