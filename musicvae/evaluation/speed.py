"""The speed figures of ``musicvae bench`` (``musicvae/cli/bench.py`` prints them): training throughput
against the machine's own sgemm rate, and the latencies a user feels (encode, sample, interpolate,
grid, render, one playground action, load, memory).

Every figure is the median of several runs after a warm-up, in one process (training in a child
process, ``python -m musicvae.evaluation.speed --worker train``, so that jemalloc can be preloaded,
see ``docs/platform.md``).  The model is ``--checkpoint`` if given, else a freshly
initialised ``hier-drums_4bar_small`` (speed does not depend on the weights).

FLOPs per example (``flops_per_example``; 1 multiply-add = 2 FLOPs; element-wise work, softmax
and the loss are left out; a one-hot times a matrix is a gather and counts 0):

    LSTM step, input I, hidden H:   2 * 4H * (I + H)
    encoder  = sum over layers l of  2 directions * T * lstm(I_l, H_l)     (I_0 = 10, the roll)
             + mu and sigma: 2 * 2 * (2 H_last) * Z
    conductor (hierarchical) = init 2 * Z * 2 sum(H_d) + U * [lstm(1, H_1) + sum_k lstm(H_{k-1}, H_k)]
    decoder  = per segment: init 2 * C * 2 sum(H_d) + context part of layer 1's input 2 * C * 4H_1
             + per step: recurrent 2 * H_1 * 4H_1 + sum_{k>1} lstm(H_{k-1}, H_k) + output 2 * H_last * 512
    training = 3 * forward (backward = input gradients + weight gradients), minus the input
               gradient of the encoder's first projection (the roll needs none).

For ``hier-drums_4bar_small`` (T 64, U 4 bars of 16, Z 256, encoder 512, decoder 2x256, C 256):
forward 403 MFLOP (encoder 275, decoder 122, conductor 7), training 1.204 GFLOP per example.  The
PyTorch training graph *executes* more: nn.LSTM multiplies the 512-wide one-hot and the context
at every step (+100 MFLOP forward); those FLOPs are waste and are not counted.  ``train_mfu`` =
counted FLOP/s over the sgemm FLOP/s measured in the same run with the same threads.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported inside the functions: `musicvae --help` must not pay for it
    import torch

KEYS = ("train_ex_per_s_b512", "train_mfu_b512", "train_ex_per_s_b64", "train_mfu_b64", "sgemm_gflops",
        "encode_ms", "sample_ms", "interpolate_ms", "grid_ms", "render_ms", "action_ms", "load_ms", "peak_rss_mb")
PARTS = ("sgemm", "train", "load", "latency", "playground", "rss", "scaling")
DEFAULT_CONFIG, QUICK_CONFIG = "hier-drums_4bar_small", "tiny-hier-drums_4bar"
JEMALLOC = Path("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")
JEMALLOC_CONF = "retain:true,dirty_decay_ms:-1,muzzy_decay_ms:-1"


def median_time(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall-clock seconds of ``fn`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


# -- FLOPs ------------------------------------------------------------------------------------
def _lstm(inp: int, hidden: int) -> int:
    return 2 * 4 * hidden * (inp + hidden)


def flops_per_example(hp) -> dict[str, float]:
    """Counted forward FLOPs per example by part, and training FLOPs (formula in the module doc)."""
    from musicvae.pattern import NUM_TOKENS, ROLL_DEPTH

    steps, z, dec = hp.max_seq_len, hp.z_size, list(hp.dec_rnn_size)
    encoder, inp = 0, ROLL_DEPTH
    for hidden in hp.enc_rnn_size:
        encoder += 2 * steps * _lstm(inp, hidden)
        inp = 2 * hidden
    encoder += 2 * 2 * inp * z
    roll_input_grad = 2 * steps * 2 * 4 * hp.enc_rnn_size[0] * ROLL_DEPTH
    stacked = sum(_lstm(a, b) for a, b in zip(dec[:-1], dec[1:]))  # layers above the first
    if hp.decoder == "hierarchical":
        segments, length = hp.level_lengths
        conductor = 2 * z * 2 * sum(dec) + segments * (_lstm(1, dec[0]) + stacked)
        context = dec[-1]
    else:
        segments, length, conductor, context = 1, steps, 0, z
    per_segment = 2 * context * 2 * sum(dec) + 2 * context * 4 * dec[0]
    per_step = 2 * dec[0] * 4 * dec[0] + stacked + 2 * dec[-1] * NUM_TOKENS
    decoder = segments * (per_segment + length * per_step)
    forward = encoder + conductor + decoder
    return {"encoder": encoder, "conductor": conductor, "decoder": decoder, "forward": forward,
            "train": 3 * forward - roll_input_grad}


# -- machine ------------------------------------------------------------------------------------
def machine_info() -> dict:
    import torch

    model, flags = "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model == "unknown":
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if f in flags]
    return {"cpu": model, "cores": os.cpu_count(), "simd": simd, "torch": torch.__version__,
            "load_avg_1m": round(os.getloadavg()[0], 2)}


def sgemm_gflops(size: int, repeats: int) -> float:
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    out = torch.empty(size, size)
    return 2 * size**3 / median_time(lambda: torch.mm(a, b, out=out), repeats) / 1e9


# -- training (child process) -------------------------------------------------------------------
def train_examples_per_s(config_name: str, batch: int, repeats: int) -> float:
    """fwd + bwd + clip + Adam on random tokens, exactly the steps ``training.loop.train`` takes."""
    import torch

    from musicvae.configs import get_config
    from musicvae.model.network import MusicVAE
    from musicvae.model.objective import compute_loss
    from musicvae.training.loop import clip_gradients

    hp = get_config(config_name).hparams
    torch.manual_seed(0)
    model = MusicVAE(hp).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=hp.learning_rate)
    tokens = torch.randint(0, 512, (batch, hp.max_seq_len), generator=torch.Generator().manual_seed(0))

    def step() -> None:
        out = compute_loss(model, tokens, step=1000)
        optimizer.zero_grad(set_to_none=True)
        out["loss"].backward()
        clip_gradients(model, hp.grad_clip, hp.grad_norm_clip_to_zero)
        optimizer.step()

    return batch / median_time(step, repeats)


def _child(args: list[str], jemalloc: bool) -> dict:
    """Run ``python -m musicvae.evaluation.speed --worker ...`` and parse its one JSON line."""
    env = dict(os.environ)
    if jemalloc:
        env["LD_PRELOAD"] = f"{JEMALLOC} {env.get('LD_PRELOAD', '')}".strip()
        env["MALLOC_CONF"] = JEMALLOC_CONF
    done = subprocess.run([sys.executable, "-m", "musicvae.evaluation.speed", *args], env=env, capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise RuntimeError(f"bench worker {args[:2]} failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _worker(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    if args.worker == "train":
        result: dict = {str(b): train_examples_per_s(args.config, b, args.repeats + (b < 512)) for b in args.batch}
    else:  # "rss": a process holding both shipped models, each having decoded once
        from musicvae.api import TrainedModel

        models = [TrainedModel.load(path) for path in args.model]
        for model in models:
            model.sample(1, 0.5, seed=0)
        result = {"models": len(models)}
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


# -- inference ----------------------------------------------------------------------------------
def rock_beat(num_steps: int = 64):
    """A fixed busy groove (kick, snare, eighth hats), so render times do not depend on weights."""
    from musicvae.pattern import DrumPattern

    hits = np.zeros((num_steps, 9), dtype=bool)
    hits[::8, 0] = hits[4::8, 1] = hits[::2, 2] = True
    return DrumPattern(hits)


def engine_of(model) -> str:
    return "fast" if getattr(model, "fast", None) is not None else "plain"


def inference_figures(model, repeats: int) -> dict[str, float]:
    """encode / sample / interpolate / grid through the TrainedModel API (patterns in and out)."""
    from musicvae.api import bilinear_z  # the app's grid

    a = rock_beat(model.num_steps)
    b = model.sample(1, 0.5, seed=1)[0]
    corners = model.sample_z(4, seed=2)
    grid_z = bilinear_z(corners.numpy(), 11)
    ms = 1e3
    return {
        "encode_ms": ms * median_time(lambda: model.encode([a]), repeats),
        "sample_ms": ms * median_time(lambda: model.sample(1, 0.5, seed=3), repeats),
        "interpolate_ms": ms * median_time(lambda: model.interpolate(a, b, 5, seed=4), repeats),
        "grid_ms": ms * median_time(lambda: model.decode(bilinear_z(corners.numpy(), 11), 0.5, seed=5),
                                    max(3, repeats // 3)),
        "grid_greedy_ms": ms * median_time(lambda: model.decode(grid_z, 0.0), max(3, repeats // 3)),
        "sample_plain_ms": ms * median_time(lambda: _plain_sample(model, corners[:1]), repeats),
    }


def _plain_sample(model, z: torch.Tensor) -> torch.Tensor:
    """The reference path: ``MusicVAE.free_run`` (z -> tokens), one nn-level step at a time."""
    import torch

    with torch.inference_mode():
        return model.model.free_run(z, 0.5, torch.Generator().manual_seed(3))[1]


def playground_figures(model, repeats: int) -> tuple[dict[str, float | None], dict[str, str]]:
    """FluidSynth render of one groove, and one action: decode + piano-roll figure (as JSON) + WAV."""
    figures: dict[str, float | None] = {"render_ms": None, "action_ms": None}
    reasons: dict[str, str] = {}
    try:
        from musicvae.media.audio import default_synth, render_pattern
        from musicvae.media.plots import piano_roll

        default_synth()  # loading the soundfont (~0.1-0.4 s) happens once per process: not timed
    except Exception as error:  # the modules are optional here: report why the figure is missing
        reasons["render_ms"] = reasons["action_ms"] = f"{type(error).__name__}: {error}"
        return figures, reasons
    groove = rock_beat(model.num_steps)
    z = model.sample_z(1, seed=6)
    pattern = model.decode(z, 0.5, seed=7)[0]

    def action() -> None:
        decoded = model.decode(z, 0.5, seed=7)[0]
        piano_roll(decoded, "sample").to_json()  # Streamlit ships the figure as JSON
        render_pattern(decoded)

    figures["render_ms"] = 1e3 * median_time(lambda: render_pattern(groove), repeats)
    figures["action_ms"] = 1e3 * median_time(action, repeats)
    figure = piano_roll(pattern, "sample")
    figures["action_parts_ms"] = {  # type: ignore[assignment]
        "decode": 1e3 * median_time(lambda: model.decode(z, 0.5, seed=7), repeats),
        "figure": 1e3 * median_time(lambda: piano_roll(pattern, "sample"), repeats),
        "json": 1e3 * median_time(figure.to_json, repeats),
        "wav": 1e3 * median_time(lambda: render_pattern(pattern), repeats),
        "hits": pattern.num_hits,
    }
    return figures, reasons


def _rss_of_two_models(folder: Path, threads: int) -> float:
    """Peak RSS of a fresh process holding both shipped models (or two copies of the benchmarked one)."""
    from musicvae.api import DEFAULT_INTERPOLATE_MODEL, DEFAULT_SAMPLE_MODEL, NoModelError, shipped_checkpoint

    try:
        paths = [shipped_checkpoint(DEFAULT_SAMPLE_MODEL), shipped_checkpoint(DEFAULT_INTERPOLATE_MODEL)]
    except NoModelError:
        paths = [folder, folder]
    worker = ["--worker", "rss", "--threads", str(threads)] + [a for p in paths for a in ("--model", str(p))]
    return _child(worker, False)["peak_rss_mb"]


def load_ms(folder: Path, repeats: int) -> float:
    from musicvae.api import TrainedModel

    return 1e3 * median_time(lambda: TrainedModel.load(folder), repeats)


# -- scaling ------------------------------------------------------------------------------------
def scaling(model, repeats: int, gmd: Path | None, threads: int) -> dict[str, list[dict]]:
    """Time vs batch size (decode, encode), vs grid cells, vs windows in ``prepare``."""
    import torch

    from musicvae.api import bilinear_z
    from musicvae.model.fast import FastMusicVAE
    from musicvae.pattern import roll_tensor

    fast = getattr(model, "fast", None) or FastMusicVAE(model.model)
    out: dict[str, list[dict]] = {"batch": [], "grid": [], "prepare": []}
    seeded = torch.Generator()
    for batch in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512):
        z = torch.randn(batch, model.z_size, generator=torch.Generator().manual_seed(batch))
        roll = roll_tensor(torch.randint(0, 512, (batch, model.num_steps)))
        runs = max(1, repeats if batch <= 16 else repeats // 3)
        row = {"batch": batch,
               "decode_ms": 1e3 * median_time(lambda z=z: fast.free_run(z, 0.5, seeded.manual_seed(0)), runs),
               "encode_ms": 1e3 * median_time(lambda roll=roll: fast.encode(roll), runs)}
        if batch <= 64:
            row["decode_plain_ms"] = 1e3 * median_time(lambda z=z: _plain_sample(model, z), max(1, runs // 2))
        out["batch"].append(row)
    corners = model.sample_z(4, seed=2)
    for n in (1, 2, 3, 5, 7, 9, 11):
        z = bilinear_z(corners.numpy(), n)
        out["grid"].append({"cells": n * n, "ms": 1e3 * median_time(lambda z=z: model.decode(z, 0.5, seed=5), 3)})
    if gmd is not None and (gmd / "info.csv").exists():
        out["prepare"] = prepare_scaling(gmd, threads)
    return out


def prepare_scaling(gmd: Path, workers: int) -> list[dict]:
    """``prepare`` on the first 16, 64, 256 train files of GMD (symlinked into a temporary folder)."""
    import csv

    from musicvae.data.prepare import prepare
    from musicvae.data.sources import PrepareSettings

    with (gmd / "info.csv").open(newline="") as handle:
        files = [row["midi_filename"] for row in csv.DictReader(handle) if row.get("split") == "train"]
    rows = []
    for count in (16, 64, 256):
        with tempfile.TemporaryDirectory(prefix="bench-prepare-") as tmp:
            root = Path(tmp) / "gmd"
            for rel in files[:count]:
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).symlink_to(gmd / rel)
            (root / "info.csv").write_text("midi_filename,split\n" + "".join(f"{r},train\n" for r in files[:count]))
            start = time.perf_counter()
            counts = prepare(root, Path(tmp) / "out", PrepareSettings(), num_workers=workers, progress=False)
            seconds = time.perf_counter() - start
        windows = sum(counts.values())
        per_window = 1e3 * seconds / max(windows, 1)
        rows.append({"files": count, "windows": windows, "s": seconds, "ms_per_window": per_window})
    return rows


def _gmd() -> Path:
    from musicvae.data.sources import default_gmd_dir

    return default_gmd_dir()


def measure(args) -> dict:
    """Every figure of ``musicvae bench`` (``args``: its parsed flags) as one dict."""
    import torch

    from musicvae.api import TrainedModel
    from musicvae.configs import get_config
    from musicvae.model.network import MusicVAE
    from musicvae.training.checkpoint import model_meta, resolve_model_dir, write_model_files

    quick = args.quick
    threads = args.threads or (1 if quick else os.cpu_count() or 1)  # quick: a smoke test, spare the machine
    repeats = 3 if quick else args.repeats
    config_name = QUICK_CONFIG if quick else DEFAULT_CONFIG
    use_jemalloc = JEMALLOC.exists() and not args.no_jemalloc
    result: dict = {"machine": machine_info(), "threads": threads, "inference_threads": args.inference_threads,
                    "train_allocator": "jemalloc" if use_jemalloc else "glibc", "reasons": {}}
    workdir = Path(tempfile.mkdtemp(prefix="musicvae-bench-"))
    try:
        if args.checkpoint:  # copied: a training run may rotate its checkpoint away mid-benchmark
            folder = workdir / "model"
            shutil.copytree(resolve_model_dir(Path(args.checkpoint)), folder,
                            ignore=shutil.ignore_patterns("optimizer*", "train_state*"))
            loaded = TrainedModel.load(folder)
            train_config, hp = loaded.name, loaded.model.hp
        else:
            torch.manual_seed(0)
            config = get_config(config_name)
            folder = workdir / config_name
            folder.mkdir()
            write_model_files(folder, MusicVAE(config.hparams), model_meta(config, 0))
            train_config, hp = config_name, config.hparams
        result["flops"] = flops = flops_per_example(hp)
        source = f"checkpoint {args.checkpoint}" if args.checkpoint else "fresh weights"
        result["model"] = f"{train_config} ({source})"

        parts = set(args.only.split(",")) if args.only else set(PARTS)
        torch.set_num_threads(threads)
        if parts & {"train", "sgemm"}:
            result["sgemm_gflops"] = sgemm_gflops(512 if quick else 2048, repeats + 2)
        if "train" in parts:
            worker = ["--worker", "train", "--config", train_config, "--batch", "512", "--batch", "64",
                      "--repeats", str(1 if quick else args.train_repeats), "--threads", str(threads)]
            speeds = {k: v for k, v in _child(worker, use_jemalloc).items() if k.isdigit()}  # one child, one import
            for batch, ex_per_s in speeds.items():
                result[f"train_ex_per_s_b{batch}"] = ex_per_s
                result[f"train_mfu_b{batch}"] = ex_per_s * flops["train"] / (result["sgemm_gflops"] * 1e9)
        torch.set_num_threads(args.inference_threads)
        if "load" in parts:
            result["load_ms"] = load_ms(folder, repeats)
        model = TrainedModel.load(folder)
        result["engine"] = engine_of(model)
        if "latency" in parts:
            result.update(inference_figures(model, repeats if quick else 2 * repeats))
        if "playground" in parts:
            figures, reasons = playground_figures(model, repeats)
            result.update(figures)
            result["reasons"].update(reasons)
        if "rss" in parts and quick:  # this process's own peak: a smoke value, spares a second torch import
            result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        elif "rss" in parts:
            result["peak_rss_mb"] = _rss_of_two_models(folder, args.inference_threads)
        if "scaling" in parts and not quick:
            result["scaling"] = scaling(model, repeats, None if args.no_prepare else _gmd(), threads)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> int:
    """``python -m musicvae.evaluation.speed --worker train|rss ...``: the child processes of :func:`measure`."""
    parser = argparse.ArgumentParser(prog="python -m musicvae.evaluation.speed")
    parser.add_argument("--worker", choices=["train", "rss"], required=True)
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    parser.add_argument("--batch", type=int, action="append", default=[])
    parser.add_argument("--model", action="append", default=[])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    _worker(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
