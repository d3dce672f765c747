"""Print the README's model and latent-direction tables from the shipped checkpoints' metrics."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    rows = []
    for folder in sorted((ROOT / "checkpoints").glob("*/config.json")):
        meta = json.loads(folder.read_text())
        m = meta.get("metrics", {})
        if "reconstruction" not in m:
            continue
        r, p = m["reconstruction"], m["prior_samples"]
        rows.append(
            f"| `{meta['config']}` | {meta['step']:,} | {r['accuracy']:.3f} | {r['sampled_accuracy']:.3f} | "
            f"{'/'.join(f'{a:.2f}' for a in r['segment_accuracy'])} | "
            f"{r['hit_precision']:.3f} / {r['hit_recall']:.3f} / {r['hit_f1']:.3f} | {r['kl_bits']:.0f} | "
            f"{r['distinct_reconstructions']:,} / {r['examples']:,} | "
            f"{p['T0.5']['usable_share']:.1%} / {p['T1.0']['usable_share']:.1%} | "
            f"{p['T0.5']['hits_per_bar_overlap']:.2f} / {p['T1.0']['hits_per_bar_overlap']:.2f} |"
        )
    print("| model | steps | TF acc | sampled acc | per-bar acc | hit P / R / F1 | KL bits | distinct recon. "
          "| usable samples T0.5 / T1.0 | hits/bar overlap T0.5 / T1.0 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
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
