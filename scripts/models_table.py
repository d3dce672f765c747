"""Print the README's model and latent-direction tables from the shipped checkpoints' metrics."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


REPORT_COLUMNS = ("TF acc", "sampled acc", "hit P / R / F1", "KL bits", "distinct recon.",
                  "usable samples T0.5 / T1.0", "hits/bar overlap T0.5 / T1.0")


def report_cells(report: dict) -> list[str]:
    """The README's figures for one `musicvae report` JSON, in REPORT_COLUMNS order (compare_runs.py too)."""
    r, p = report["reconstruction"], report["prior_samples"]
    return [
        f"{r['accuracy']:.3f}",
        f"{r['sampled_accuracy']:.3f}",
        f"{r['hit_precision']:.3f} / {r['hit_recall']:.3f} / {r['hit_f1']:.3f}",
        f"{r['kl_bits']:.0f}",
        f"{r['distinct_reconstructions']:,} / {r['examples']:,}",
        f"{p['T0.5']['usable_share']:.1%} / {p['T1.0']['usable_share']:.1%}",
        f"{p['T0.5']['hits_per_bar_overlap']:.2f} / {p['T1.0']['hits_per_bar_overlap']:.2f}",
    ]


def markdown_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    columns = ["model", "steps", *REPORT_COLUMNS]
    columns.insert(4, "per-bar acc")
    rows = []
    for folder in sorted((ROOT / "checkpoints").glob("*/config.json")):
        meta = json.loads(folder.read_text())
        m = meta.get("metrics", {})
        if "reconstruction" not in m:
            continue
        cells = [f"`{meta['config']}`", f"{meta['step']:,}", *report_cells(m)]
        cells.insert(4, "/".join(f"{a:.2f}" for a in m["reconstruction"]["segment_accuracy"]))
        rows.append(markdown_row(cells))
    print(markdown_row(columns))
    print("|" + "---|" * len(columns))
    print("\n".join(rows))
    for folder in sorted((ROOT / "checkpoints").glob("*/directions.json")):
        info = json.loads(folder.read_text())["info"]
        print(f"\n`{folder.parent.name}` ({info['measured_on']['grooves']} validation grooves, alpha -2..2, "
              "greedy decode):\n")
        print("| direction | target attribute | ρ (mean curve) | ρ (median groove) | change per unit | entanglement "
              "| shipped |")
        print("|---|---|---|---|---|---|---|")
        for r in info["measurements"]:
            ent = "—" if r["entanglement"] is None else f"{r['entanglement']:.2f}"
            label = r.get("label", r["direction"])
            shipped = "PC slider" if r["kind"] == "pca" else ("yes" if r["ship"] else "no")
            print(f"| {label} | {r['target']} | {r['rho']:.2f} | {r['rho_median_groove']:.2f} | "
                  f"{r['change_per_unit']:+.3f} | {ent} | {shipped} |")


if __name__ == "__main__":
    main()
