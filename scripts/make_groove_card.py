"""Write checkpoints/<name>/MODEL_CARD.md for a shipped groove (humanize) model from its folder, run dir and
``musicvae report`` figures (``musicvae.evaluation.groove``).

    .venv/bin/python scripts/make_groove_card.py checkpoints/groovae-hier_4bar_humanize runs/humanize \
        --purpose "..." --command "scripts/train_models.sh (run humanize)" [--flat runs/humanize_flat_report.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from make_model_card import CREDIT, cpu_name, weights_dtype

METHODS = (("model", "this model"), ("nearest_neighbour", "nearest training window's feel"),
           ("position_mean", "mean per instrument and 16th"), ("constant", "constant velocity, on the grid"),
           ("jitter", "random jitter (data's spread)"))
BASELINES = [key for key, _ in METHODS[1:]]


def score_lines(metrics: dict) -> list[str]:
    real = metrics["real"]
    lines = ["| method | velocity MAE (MIDI) | timing MAE (ms) | hit F1 vs input | velocity spread (std) | "
             "median abs offset (ms) | off-beat 16th offset on swung windows (steps) |",
             "|---|---|---|---|---|---|---|",
             f"| the drummers (reference) | 0 | 0 | 1 | {real['velocity_std']:.1f} | "
             f"{real['median_abs_offset_ms']:.1f} | {real['swing']['offbeat_offset_swing']:+.3f} |"]
    for key, label in METHODS:
        s = metrics["scores"][key]
        lines.append(f"| {label} | {s['velocity_mae']:.1f} | {s['timing_mae_ms']:.1f} | {s['hit_f1']:.3f} | "
                     f"{s['velocity_std']:.1f} | {s['median_abs_offset_ms']:.1f} | "
                     f"{s['swing']['offbeat_offset_swing']:+.3f} |")
    return lines


def instrument_lines(metrics: dict) -> list[str]:
    model, best = metrics["scores"]["model"]["per_instrument"], metrics["scores"]["position_mean"]["per_instrument"]
    lines = ["| instrument | velocity MAE model / position mean | timing MAE ms model / position mean |",
             "|---|---|---|"]
    for name, m in model.items():
        b = best[name]
        lines.append(f"| {name} | {m['velocity_mae']:.1f} / {b['velocity_mae']:.1f} | "
                     f"{m['timing_mae_ms']:.1f} / {b['timing_mae_ms']:.1f} |")
    return lines


def limitations(metrics: dict) -> list[str]:
    """Limitations that follow from the numbers, so the card cannot drift from its metrics."""
    scores, out = metrics["scores"], []
    model = scores["model"]
    for figure, unit in (("velocity_mae", "MIDI units"), ("timing_mae_ms", "ms")):
        better = [k for k in BASELINES if scores[k][figure] <= model[figure]]
        if better:
            out.append(f"- On {figure.replace('_', ' ')} the model ({model[figure]:.1f} {unit}) does not beat "
                       f"{', '.join(better)} ({', '.join(f'{scores[k][figure]:.1f}' for k in better)}).")
    if model["velocity_std"] < 0.75 * metrics["real"]["velocity_std"]:
        out.append(f"- Its dynamics are flatter than the drummers' (velocity spread {model['velocity_std']:.1f} vs "
                   f"{metrics['real']['velocity_std']:.1f}): squared-error training plays the expected velocity, "
                   "so ghost notes come out louder and accents softer than a drummer's. The feel variation "
                   "(z drawn around its mean) does not widen it: with the hits given to the decoder, z carries "
                   "little (measured on 64 validation grooves: another take moves velocities by ~0.7 MIDI units "
                   "at variation 1.0).")
    swing = metrics["real"]["swing"]["offbeat_offset_swing"]
    if model["swing"]["offbeat_offset_swing"] < 0.5 * swing:
        out.append(f"- On the {model['swing']['swing_windows']} test windows the drummer swung (off-beat 16ths "
                   f"{swing:+.3f} steps late on average) the model plays them "
                   f"{model['swing']['offbeat_offset_swing']:+.3f}: from hits alone it rarely hears a swing.")
    out.append("- Trained on 4/4 GMD grooves (9 drum classes); it reads a groove's hits only, so a groove's own "
               "tempo and style reach it only through the pattern.")
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--purpose", required=True)
    parser.add_argument("--command", required=True)
    parser.add_argument("--training_precision", default="float32")
    parser.add_argument("--flat", type=Path, default=None, help="`musicvae report` JSON of the flat twin")
    args = parser.parse_args()

    meta = json.loads((args.model_dir / "config.json").read_text())
    metrics = meta["metrics"]
    state_files = sorted((args.run_dir / "checkpoints").glob("step-*/train_state.json"))
    state = json.loads(state_files[-1].read_text()) if state_files else {}
    weights = args.model_dir / "model.safetensors"
    curve = [json.loads(line) for line in (args.run_dir / "curve.jsonl").read_text().splitlines() if line.strip()]
    losses, gap, at_120 = metrics["losses"], metrics["generalisation_gap"], metrics["at_120_qpm"]
    lines = [
        f"# Model card: `{meta['config']}`",
        "",
        f"**Use**: {args.purpose}. A hierarchical groove VAE (GrooVAE's representation and loss on MusicVAE's "
        "conductor + per-bar decoder) that reads a quantized 4-bar groove and plays it with velocities and "
        "microtiming; its decoder reads each step's hits, so it never adds or drops a note.",
        "",
        "## Training",
        f"- Command: `{args.command}`",
        f"- Config `{meta['config']}` with hparams: `{json.dumps(meta['hparams'])}`",
        f"- Steps: {meta['step']:,}; wall time {state.get('elapsed_secs', 0.0) / 3600:.2f} h (wall clock, "
        "including time the machine spent on other work)",
        f"- Hardware: {cpu_name()}, 2 cores, no GPU; 1 torch thread, jemalloc; training arithmetic: "
        f"{args.training_precision}",
        f"- Weights: `model.safetensors`, {weights_dtype(weights)}, {weights.stat().st_size / 1e6:.1f} MB",
        f"- Data: GMD `train` split, 13,233 4-bar windows with the drummers' velocities and timing offsets "
        f"(fingerprint {meta.get('data_fingerprint', '')}); the checkpoint with the best validation r_loss "
        "shipped; `test` never used for training or tuning",
        "",
        f"## Humanizing the test split ({metrics['windows']:,} windows, quantized, against the real performances)",
        "Every method gets the same quantized hits; errors are measured on the hit cells, timing at each "
        "window's own tempo. Baselines are computed from the training split (`musicvae/evaluation/groove.py`).",
        "",
        *score_lines(metrics),
        "",
        "Per instrument, against the strongest simple baseline:",
        "",
        *instrument_lines(metrics),
        "",
        "## Generalisation",
        f"- Training subset ({metrics['train_subset']['windows']:,} windows): velocity MAE "
        f"{metrics['train_subset']['velocity_mae']:.1f}, timing MAE {metrics['train_subset']['timing_mae_ms']:.1f} ms; "
        f"test / train ratios {gap['velocity_mae_ratio']:.2f} (velocity) and {gap['timing_mae_ratio']:.2f} (timing).",
        f"- Teacher-forced test losses per step (summed over drums): hits {losses['hits_loss']:.3f}, velocities "
        f"{losses['velocities_loss']:.3f}, offsets {losses['offsets_loss']:.3f}; KL {losses['kl_bits']:.1f} bits.",
        f"- Played at 120 qpm, a test groove gets a median of {at_120['distinct_velocities_median']:.0f} distinct "
        f"velocities and a median |offset| of {at_120['median_abs_offset_ms']:.1f} ms.",
        "",
    ]
    if args.flat:
        flat = json.loads(args.flat.read_text())
        f, m = flat["scores"]["model"], metrics["scores"]["model"]
        lines += ["## Hierarchical vs flat decoder (same recipe, test split)",
                  "| model | steps | velocity MAE | timing MAE (ms) |", "|---|---|---|---|",
                  f"| `{meta['config']}` | {meta['step']:,} | {m['velocity_mae']:.1f} | {m['timing_mae_ms']:.1f} |",
                  f"| `{flat['config']}` | {flat['step']:,} | {f['velocity_mae']:.1f} | {f['timing_mae_ms']:.1f} |", ""]
    lines += [f"## Learning curve (validation, {curve[0]['examples'] if curve else 0:,} windows)",
              "| step | wall h | r_loss | velocity MAE | offset MAE (steps) | KL bits |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['step']} | {r['wall_hours']:.2f} | {r['r_loss']:.1f} | {r['velocity_mae']:.1f} | "
              f"{r['offset_mae_steps']:.3f} | {r['kl_bits']:.0f} |" for r in curve]
    lines += ["", "## Known limitations", *limitations(metrics), "", "## Credit", CREDIT, ""]
    (args.model_dir / "MODEL_CARD.md").write_text("\n".join(lines))
    print(args.model_dir / "MODEL_CARD.md")


if __name__ == "__main__":
    main()
