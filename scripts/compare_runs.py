"""Hierarchical vs flat decoder at the same step budget: validation curves and test-split reports.

    .venv/bin/python scripts/compare_runs.py \
        --run hier=runs/lokl/curve.jsonl --run flat=runs/cat/curve.jsonl \
        --report hier=docs/baseline/hier-drums_4bar_small.step2541.test.json \
        --report flat=docs/baseline/cat-drums_4bar_small.step2541.test.json

Prints Markdown (the tables in docs/baseline/README.md). Curves are compared at the steps both runs
evaluated, because wall-clock hours on a shared 2-core machine say more about the neighbours than
about the model.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from models_table import REPORT_COLUMNS, markdown_row, report_cells  # scripts/ is on sys.path

CURVE_COLUMNS = ("accuracy", "sampled_accuracy", "hit_f1", "distinct_reconstructions")


def _named_paths(items: list[str]) -> dict[str, Path]:
    named = {}
    for item in items:
        name, _, path = item.partition("=")
        if not path:
            raise SystemExit(f"expected NAME=PATH, got {item!r}")
        if not Path(path).is_file():
            raise SystemExit(f"{path}: no such file (has that run evaluated yet?)")
        named[name] = Path(path)
    return named


def _curve(path: Path, max_step: int | None) -> dict[int, dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {r["step"]: r for r in rows if max_step is None or r["step"] <= max_step}


def _fmt(value: float | int) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:.3f}"


def curve_table(curves: dict[str, dict[int, dict]]) -> str:
    names = list(curves)
    steps = sorted(set.intersection(*(set(c) for c in curves.values())))
    header = ["step"] + [f"{col} ({name})" for col in CURVE_COLUMNS for name in names]
    lines = [markdown_row(header), "|" + "---|" * len(header)]
    for step in steps:
        cells = [f"{step:,}"] + [_fmt(curves[name][step][col]) for col in CURVE_COLUMNS for name in names]
        lines.append(markdown_row(cells))
    return "\n".join(lines)


def report_table(reports: dict[str, dict]) -> str:
    columns = ["model", "config", "step", *REPORT_COLUMNS]
    lines = [markdown_row(columns), "|" + "---|" * len(columns)]
    for name, rep in reports.items():
        lines.append(markdown_row([name, f"`{rep['config']}`", f"{rep['step']:,}", *report_cells(rep)]))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="append", default=[], help="NAME=runs/x/curve.jsonl (validation curve)")
    parser.add_argument("--report", action="append", default=[], help="NAME=report.json (`musicvae report`)")
    parser.add_argument("--max_step", type=int, default=None, help="ignore curve points after this step")
    args = parser.parse_args()
    if args.run:
        curves = {name: _curve(path, args.max_step) for name, path in _named_paths(args.run).items()}
        print("Validation (512 windows) at equal steps:\n")
        print(curve_table(curves))
    if args.report:
        reports = {name: json.loads(path.read_text()) for name, path in _named_paths(args.report).items()}
        print("\nTest split:\n")
        print(report_table(reports))


if __name__ == "__main__":
    main()
