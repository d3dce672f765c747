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


def print_generalisation(metas: list[dict]) -> None:
    """Generalisation gap, the retrieval baseline and sample musicality (reports from issue 14 on)."""
    print("| model | r_loss train subset / test | test ÷ train | hit F1 train subset / test | retrieval F1 "
          "| copy beats model | degenerate T0.5 / T1.0 (data) | bar repetition T0.5 / T1.0 (data) |")
    print("|---|---|---|---|---|---|---|---|")
    for meta in metas:
        m = meta.get("metrics", {})
        if "train_subset" not in m:
            continue
        r, t, ret, p = m["reconstruction"], m["train_subset"], m["retrieval_baseline"], m["prior_samples"]
        ratio = m["generalisation_gap"]["r_loss_ratio"]
        print(f"| `{meta['config']}` | {t['r_loss']:.1f} / {r['r_loss']:.1f} | {ratio:.2f}"
              f" | {t['hit_f1']:.3f} / {r['hit_f1']:.3f} | {ret['hit_f1']:.3f} | {ret['beats_model_share']:.1%} | "
              f"{p['T0.5']['degenerate_share']:.1%} / {p['T1.0']['degenerate_share']:.1%} "
              f"({p['reference']['degenerate_share']:.1%}) | {p['T0.5']['bar_repetition_jaccard']:.2f} / "
              f"{p['T1.0']['bar_repetition_jaccard']:.2f} ({p['reference']['bar_repetition_jaccard']:.2f}) |")


def print_drummer(metas: list[dict]) -> None:
    """What a drummer sees in 512 samples (issue 23): plain decoding, then playable (the app's default)."""
    print("| model | 3-hand windows T0.5 / T1.0 (test) | timekeeper bars T0.5 / T1.0 (test) "
          "| bar coherence T0.5 / T1.0 (test) | classifier T0.5 / T1.0 (train vs test) | memorised T0.5 / T1.0 |")
    print("|---|---|---|---|---|---|")
    for meta in metas:
        d = meta.get("metrics", {}).get("drummer")
        if d is None:
            continue
        ref = d["reference_windows"]
        for mode in ("", " playable"):
            lo, hi = d[f"T0.5{mode}"], d[f"T1.0{mode}"]
            print(f"| `{meta['config']}`{mode} | {lo['three_hand_windows']:.1%} / {hi['three_hand_windows']:.1%} "
                  f"({ref['three_hand_windows']:.1%}) | {lo['timekeeper_bars']:.0%} / {hi['timekeeper_bars']:.0%} "
                  f"({ref['timekeeper_bars']:.0%}) | {lo['bar_coherence']:.2f} / {hi['bar_coherence']:.2f} "
                  f"({ref['bar_coherence']:.2f}) | {lo['classifier_vs_reference']:.2f} / "
                  f"{hi['classifier_vs_reference']:.2f} ({ref['classifier_vs_train']:.2f}) | "
                  f"{lo['memorised']:.1%} / {hi['memorised']:.1%} |")


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
    print()
    metas = [json.loads(f.read_text()) for f in sorted((ROOT / "checkpoints").glob("*/config.json"))]
    print_generalisation(metas)
    print()
    print_drummer(metas)
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
