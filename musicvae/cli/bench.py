"""``musicvae bench``: speed figures (``musicvae.evaluation.speed`` measures them) as a table, or one
JSON line with ``--json`` (the table then goes to stderr).  docs/performance.md has the figures."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from musicvae.evaluation.speed import KEYS, PARTS

TARGETS = {"train_mfu_b512": ">= 0.60", "train_mfu_b64": ">= 0.40", "train_ex_per_s_b512": "> 100 (Magenta)",
           "sample_ms": "<= 3", "encode_ms": "<= 4", "interpolate_ms": "<= 10", "grid_ms": "<= 300",
           "load_ms": "<= 200", "action_ms": "<= 60"}

# What limits each figure on this kind of machine (measured; see docs/performance.md).
BOUNDS = {
    "train": "compute: MKL/oneDNN GEMMs; the recurrences are 64 dependent small GEMMs (worse at b64)",
    "sgemm_gflops": "compute: FMA units (2048^2 sgemm)",
    "encode_ms": "L3 bandwidth: oneDNN LSTM reads 8 MB of recurrent weights at each of 64 steps",
    "sample_ms": "L3 bandwidth (3.5 MB of weights x 64 steps) + ~19 ATen ops/step + 32k Exp(1) draws",
    "interpolate_ms": "MKL's small-M sgemm (batch 5 costs ~3x batch 1 per step) + encode",
    "grid_ms": "compute (M=121 GEMMs) + serial Exp(1) draws (4M, ~20 ns each) for T > 0",
    "render_ms": "FluidSynth synthesis (one thread)",
    "action_ms": "sum: decode + plotly figure build/JSON + FluidSynth",
    "load_ms": "safetensors read + module construction + weight preparation",
    "peak_rss_mb": "torch runtime (~300 MB) + two models' weights",
}


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="measure training and inference speed (the figures of docs/performance.md)")
    p.add_argument("--json", action="store_true", help="one JSON line on stdout (the table goes to stderr)")
    p.add_argument("--checkpoint", type=Path, default=None, help="a model folder (default: fresh weights)")
    p.add_argument("--quick", action="store_true", help="tiny model, few repeats, no scaling: a smoke test")
    p.add_argument("--repeats", type=int, default=7, help="timed runs per latency figure (default 7)")
    p.add_argument("--train_repeats", type=int, default=3, help="timed training steps per batch size (default 3)")
    p.add_argument("--threads", type=int, default=None, help="torch threads for sgemm and training (default: cores)")
    p.add_argument("--inference_threads", type=int, default=1,
                   help="torch threads for the latency figures (default 1: see docs/performance.md)")
    p.add_argument("--no_jemalloc", action="store_true", help="train with glibc malloc even if jemalloc exists")
    p.add_argument("--no_prepare", action="store_true", help="skip the prepare scaling (needs GMD)")
    p.add_argument("--only", default="", help=f"comma-separated parts to run, of: {','.join(PARTS)} (default: all)")
    p.set_defaults(run=run)


def run(args) -> int:
    from musicvae.evaluation.speed import measure

    result = measure(args)
    print(format_report(result), file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(result, default=float))
    return 0


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1 else f"{value:.1f}"
    return str(value)


def format_report(result: dict) -> str:
    info = result["machine"]
    lines = [f"machine: {info['cpu']}, {info['cores']} cores, {' '.join(info['simd'])}; torch {info['torch']}; "
             f"load avg {info['load_avg_1m']} at start; threads: train {result['threads']}, "
             f"inference {result['inference_threads']}; allocator for training: {result['train_allocator']}; "
             f"engine: {result.get('engine')}; model: {result['model']}",
             f"{'figure':<22}{'value':>10}  {'target':<17}bound", "-" * 100]
    for key in (k for k in KEYS + ("grid_greedy_ms", "sample_plain_ms") if k in result):
        bound = BOUNDS.get(key) or (BOUNDS["train"] if key.startswith("train") else "")
        note = result.get("reasons", {}).get(key)
        lines.append(f"{key:<22}{_fmt(result.get(key)):>10}  {TARGETS.get(key, ''):<17}{note or bound}")
    if result.get("action_parts_ms"):
        parts = result["action_parts_ms"]
        lines.append("action parts (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in parts.items() if k != "hits")
                     + f" (a groove with {parts['hits']} hits)")
    flops = result["flops"]
    lines.append(f"FLOPs/example: forward {flops['forward'] / 1e6:.0f} M (encoder {flops['encoder'] / 1e6:.0f}, "
                 f"conductor {flops['conductor'] / 1e6:.0f}, decoder {flops['decoder'] / 1e6:.0f}); "
                 f"training {flops['train'] / 1e9:.3f} G")
    scale = result.get("scaling") or {}
    if scale.get("batch"):
        lines.append("batch  decode ms  ms/groove  plain ms  encode ms  ms/groove")
        for r in scale["batch"]:
            plain = f"{r['decode_plain_ms']:8.1f}" if "decode_plain_ms" in r else "       -"
            lines.append(f"{r['batch']:>5}  {r['decode_ms']:9.1f}  {r['decode_ms'] / r['batch']:9.2f}  {plain}  "
                         f"{r['encode_ms']:9.1f}  {r['encode_ms'] / r['batch']:9.2f}")
    if scale.get("grid"):
        lines.append("grid cells: " + ", ".join(f"{r['cells']}: {r['ms']:.0f} ms" for r in scale["grid"]))
    if scale.get("prepare"):
        lines.append("prepare: " + ", ".join(f"{r['files']} files/{r['windows']} windows: {r['s']:.2f} s "
                                               f"({r['ms_per_window']:.1f} ms/window)" for r in scale["prepare"]))
    return "\n".join(lines)
