"""``musicvae`` command line: thin wrappers over the package, with Magenta's flag names."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="musicvae", description="Hierarchical MusicVAE for 4-bar drum grooves.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare", help="MIDI folder -> 4-bar training windows per split")
    p.add_argument("--examples_path", required=True, type=Path, help="GMD-style folder (info.csv) or any MIDI tree")
    p.add_argument("--output_dir", required=True, type=Path)
    p.add_argument("--slice_bars", type=_positive_int, default=4, help="window length in bars (default 4)")
    p.add_argument("--gap_bars", type=_positive_int, default=1, help="empty bars that end a track (default 1)")
    p.add_argument("--max_bars", type=_positive_int, default=100, help="truncate tracks to this many bars")
    p.add_argument("--max_tensors_per_notesequence", type=int, default=0,
                   help="cap on windows per file; 0 = no cap (default; Magenta uses 5)")
    p.add_argument("--num_workers", type=_positive_int, default=None, help="processes (default: all cores)")
    p.add_argument("--seed", type=int, default=0, help="seed for the capped random choice")
    p.add_argument("--shard_windows", type=int, default=0,
                   help="write resumable shards of at most N windows (for big corpora; default 0 = one file "
                        "per split)")
    p.add_argument("--validation_fraction", type=float, default=0.0,
                   help="share of files put in validation by hash of their path, for folders without a split "
                        "column (default 0)")
    p.add_argument("--test_fraction", type=float, default=0.0, help="the same for test (default 0)")

    p = sub.add_parser("train", help="train or evaluate a model (resumes automatically)")
    p.add_argument("--config", required=True, help="a registered config name (see `musicvae info --list`)")
    p.add_argument("--run_dir", required=True, type=Path, help="checkpoints and TensorBoard logs go here")
    p.add_argument("--mode", choices=["train", "eval"], default="train")
    p.add_argument("--examples_path", required=True, type=Path,
                   help="a `musicvae prepare` output folder, or a MIDI folder (prepared into RUN_DIR/data)")
    p.add_argument("--num_steps", type=_positive_int, default=200000, help="total steps to train (default 200000)")
    p.add_argument("--hparams", default="", help="overrides, e.g. batch_size=64,free_bits=96")
    p.add_argument("--eval_split", default="validation", help="split for --mode eval (default validation)")
    p.add_argument("--checkpoint_secs", type=float, default=60.0, help="seconds between checkpoints (default 60)")
    p.add_argument("--checkpoints_to_keep", type=_positive_int, default=3)
    p.add_argument("--eval_every_steps", type=int, default=0, help="validation metrics every N steps (0 = off)")
    p.add_argument("--eval_examples", type=_positive_int, default=512, help="validation windows for that check")
    p.add_argument("--log_every_steps", type=_positive_int, default=10)
    p.add_argument("--num_threads", type=_positive_int, default=None,
                   help="torch threads (default: all cores, shared out between torchrun's processes)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="where to train; auto = a GPU when one is visible (default auto)")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast for the forward pass (for GPUs)")
    p.add_argument("--init_from", type=Path, default=None,
                   help="start a new run from a model folder's weights and step (e.g. a shipped checkpoint)")
    p.add_argument("--shuffle_shards", type=_positive_int, default=8,
                   help="sharded data: shards mixed together in the shuffle buffer (default 8)")

    p = sub.add_parser("generate", help="sample or interpolate 4-bar grooves to MIDI files")
    p.add_argument("--config", default=None, help="expected config name (checked against the checkpoint)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--checkpoint", "--checkpoint_file", dest="checkpoint", type=Path, default=None,
                        help="a model folder (default: the shipped model for the mode)")
    source.add_argument("--run_dir", type=Path, default=None, help="use the newest checkpoint of a training run")
    p.add_argument("--mode", choices=["sample", "interpolate"], required=True)
    p.add_argument("--num_outputs", type=_positive_int, default=5,
                   help="grooves to write; for interpolate, both endpoints included (default 5)")
    p.add_argument("--temperature", type=float, default=0.5, help="softmax temperature, 0 = greedy (default 0.5)")
    p.add_argument("--input_midi_1", type=Path)
    p.add_argument("--input_midi_2", type=Path)
    p.add_argument("--window_1", type=int, default=None, help="which 4-bar window of input 1 (see inspect)")
    p.add_argument("--window_2", type=int, default=None, help="which 4-bar window of input 2")
    p.add_argument("--method", choices=["slerp", "lerp"], default="slerp")
    p.add_argument("--output_dir", required=True, type=Path)
    p.add_argument("--qpm", type=float, default=120.0, help="tempo of the written MIDI (default 120)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--attribute", default="",
                   help="steer with measured attribute vectors, e.g. density=+1.0,syncopation=-0.5")

    p = sub.add_parser("inspect", help="what the loader finds in MIDI files")
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--json", action="store_true", help="one JSON object per file")

    p = sub.add_parser("report", help="model-card metrics: reconstruction on a split + prior samples")
    p.add_argument("--checkpoint", required=True, type=Path, help="a model folder or a run dir")
    p.add_argument("--examples_path", required=True, type=Path, help="a `musicvae prepare` output folder")
    p.add_argument("--split", default="test", help="reference split (default test)")
    p.add_argument("--num_samples", type=_positive_int, default=512, help="prior samples per temperature")
    p.add_argument("--output", type=Path, default=None, help="also write the JSON here")
    p.add_argument("--gmd_root", type=Path, default=None, help="GMD folder: adds the CI regression probe")
    p.add_argument("--num_threads", type=_positive_int, default=None)

    p = sub.add_parser("export", help="copy a training checkpoint into a lean model folder")
    p.add_argument("--checkpoint", required=True, type=Path, help="a run dir (newest checkpoint) or step folder")
    p.add_argument("--output_dir", required=True, type=Path, help="e.g. checkpoints/hier-drums_4bar_small")
    p.add_argument("--metrics", type=Path, default=None, help="a `musicvae report` JSON to embed")
    p.add_argument("--half", action="store_true", help="store weights as float16")

    p = sub.add_parser("render", help="MIDI file -> WAV through FluidSynth (the app's renderer)")
    p.add_argument("input", type=Path, help="a MIDI file")
    p.add_argument("output", type=Path, help="WAV to write (22.05 kHz mono 16-bit)")
    p.add_argument("--qpm", type=float, default=None, help="tempo (default: the file's first tempo)")
    p.add_argument("--repeats", type=_positive_int, default=1)
    p.add_argument("--soundfont", type=Path, default=None, help="default: assets/soundfont/, then Debian's")
    p.add_argument("--sample_rate", type=_positive_int, default=22050)

    p = sub.add_parser("directions", help="latent directions (PCA + measured attribute vectors) for a checkpoint")
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--examples_path", type=Path, default=Path("data/gmd"), help="a `musicvae prepare` output folder")
    p.add_argument("--num_directions", type=_positive_int, default=16, help="principal directions kept")
    p.add_argument("--max_windows", type=_positive_int, default=8192, help="train windows encoded")
    p.add_argument("--num_grooves", type=_positive_int, default=256, help="validation grooves for the measurement")
    p.add_argument("--no_attributes", action="store_true", help="principal directions only, no measurement")

    p = sub.add_parser("info", help="config details and parameter counts")
    p.add_argument("--config", default="hier-drums_4bar_small")
    p.add_argument("--hparams", default="")
    p.add_argument("--list", action="store_true", help="list registered configs")
    from musicvae.bench import add_bench_parser  # light: bench imports torch only when it runs

    add_bench_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = globals()[f"run_{args.command}"]
    try:
        return handler(args) or 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, RuntimeError) as error:  # our one-line errors (InputError, CheckpointError, AudioError)
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a file or folder that cannot be read or written (e.g. --output_dir)
        print(f"error: {os_error_sentence(error)}", file=sys.stderr)
        return 2
    except Exception as error:
        if type(error).__name__ != "SafetensorError":  # a bug: keep the traceback
            raise
        print(f"error: a weights file is damaged or incomplete ({error}).", file=sys.stderr)
        return 2


def os_error_sentence(error: OSError) -> str:
    """'PATH: Permission denied.' for a system error; our own OSErrors (no errno) as they are."""
    if error.strerror and error.filename is not None:
        paths = " -> ".join(str(p) for p in (error.filename, error.filename2) if p is not None)
        return f"{paths}: {error.strerror}."
    return str(error)


def run_prepare(args) -> int:
    from musicvae.data.prepare import prepare
    from musicvae.data.sources import PrepareSettings

    settings = PrepareSettings(
        args.slice_bars, args.gap_bars, args.max_bars, args.max_tensors_per_notesequence, args.seed
    )
    counts = prepare(args.examples_path, args.output_dir, settings, args.num_workers, shard_windows=args.shard_windows,
                     validation_fraction=args.validation_fraction, test_fraction=args.test_fraction)
    manifest = json.loads((args.output_dir / "manifest.json").read_text())
    rejected = manifest.get("rejected_count", len(manifest.get("rejected", {})))
    if rejected:
        where = args.output_dir / manifest.get("rejected_log", "manifest.json")
        print(f"{rejected} files gave no window (reasons in {where})")
    print(f"windows: train={counts['train']} validation={counts['validation']} test={counts['test']}")
    return 0


def _data_dir(args) -> Path:
    if (args.examples_path / "manifest.json").exists():
        return args.examples_path
    from musicvae.data.prepare import prepare
    from musicvae.data.sources import PrepareSettings

    data_dir = args.run_dir / "data"
    if not (data_dir / "manifest.json").exists():
        print(f"preparing {args.examples_path} into {data_dir}")
        prepare(args.examples_path, data_dir, PrepareSettings())
    return data_dir


def run_train(args) -> int:
    import torch

    from musicvae.configs import get_config
    from musicvae.training.distributed import default_num_threads

    torch.set_num_threads(args.num_threads or default_num_threads())
    config = get_config(args.config, args.hparams)
    data_dir = _data_dir(args)
    if args.mode == "eval":
        from musicvae.data.storage import load_split
        from musicvae.training.checkpoint import load_model
        from musicvae.training.evaluation import evaluate

        model, meta = load_model(args.run_dir)
        split = load_split(data_dir, args.eval_split)
        result = {"config": meta["config"], "step": meta["step"], "split": args.eval_split,
                  **evaluate(model, split.tokens, batch_size=256)}
        print(json.dumps(result))
        return 0
    from musicvae.training.loop import train

    result = train(config, args.run_dir, data_dir, args.num_steps, args.checkpoint_secs, args.checkpoints_to_keep,
                   args.eval_every_steps, args.eval_examples, args.log_every_steps, args.seed,
                   device=args.device, bf16=args.bf16, shuffle_shards=args.shuffle_shards, init_from=args.init_from)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks for all
        print(json.dumps(result))
    return 0


def _load_input(path: Path, window: int | None):
    from musicvae.midi.loader import InputError, load_grooves

    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(f"{path}: cannot read the file ({error.strerror}).") from None
    loaded = load_grooves(data, path.name)
    index = loaded.default_index if window is None else window
    if not 0 <= index < len(loaded.windows):
        raise InputError(f"{path}: window {index} does not exist (it has {len(loaded.windows)}; see inspect).")
    return loaded.windows[index]


def run_generate(args) -> int:
    from musicvae.api import DEFAULT_INTERPOLATE_MODEL, DEFAULT_SAMPLE_MODEL, TrainedModel, shipped_checkpoint
    from musicvae.fileio import atomic_write_bytes
    from musicvae.training.checkpoint import resolve_model_dir

    if args.checkpoint or args.run_dir:
        folder = resolve_model_dir(args.checkpoint or args.run_dir)
    else:
        folder = shipped_checkpoint(DEFAULT_SAMPLE_MODEL if args.mode == "sample" else DEFAULT_INTERPOLATE_MODEL)
    model = TrainedModel.load(folder)
    if args.config and args.config != model.name:
        raise ValueError(f"--config {args.config} does not match the checkpoint's config {model.name}")
    offset = _attribute_offset(folder, args.attribute, model.z_size) if args.attribute else None
    if args.mode == "sample":
        patterns = model.sample(args.num_outputs, args.temperature, args.seed, args.qpm, z_offset=offset)
    else:
        if not (args.input_midi_1 and args.input_midi_2):
            raise ValueError("--mode interpolate needs --input_midi_1 and --input_midi_2")
        if args.num_outputs < 2:
            raise ValueError("--num_outputs must be at least 2 for interpolate (both endpoints count)")
        a = _load_input(args.input_midi_1, args.window_1)
        b = _load_input(args.input_midi_2, args.window_2)
        patterns = model.interpolate(a, b, args.num_outputs, args.method, args.temperature, args.seed,
                                     qpm=args.qpm, z_offset=offset)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    for i, pattern in enumerate(patterns):
        path = args.output_dir / f"{model.name}_{args.mode}_{i + 1:02d}-of-{len(patterns):02d}.mid"
        atomic_write_bytes(path, pattern.to_midi_bytes(args.qpm))
        print(path)
    return 0


def _attribute_offset(folder: Path, spec: str, z_size: int):
    """'density=+1.0,syncopation=-0.5' -> the z offset along the shipped attribute vectors."""
    import torch

    from musicvae.configs import parse_hparams
    from musicvae.latent.directions import load_directions

    directions = load_directions(folder, z_size)
    named = {e["attribute"]: i for i, e in enumerate(directions.entries if directions else [])
             if e.get("kind") == "attribute"}
    if not named:
        raise ValueError(f"{folder} has no measured attribute directions (run `musicvae directions`)")
    alphas = {}
    for name, value in parse_hparams(spec).items():
        if name not in named:
            raise ValueError(f"no shipped attribute {name!r}; available: {', '.join(sorted(named))}")
        alphas[named[name]] = float(value)
    return torch.from_numpy(directions.offset(alphas))


def run_inspect(args) -> int:
    from musicvae.midi.loader import InputError, load_grooves

    failures = 0
    for path in args.files:
        try:
            loaded = load_grooves(path.read_bytes(), path.name)
        except InputError as error:
            failures += 1
            _report(args, path, {"ok": False, "reason": str(error)}, f"{path}: {error}")
            continue
        except OSError as error:
            failures += 1
            _report(args, path, {"ok": False, "reason": error.strerror}, f"{path}: cannot read ({error.strerror}).")
            continue
        info = {"ok": True, **loaded.summary, "notices": loaded.notices,
                "window_list": [
                    {"index": i, "source": w.source, "hits": w.num_hits} for i, w in enumerate(loaded.windows)
                ],
                "default_window": loaded.default_index}
        lines = [f"{path}: {loaded.summary['windows']} usable 4-bar window(s); tempo {loaded.summary['qpm']} qpm; "
                 f"meter {', '.join(loaded.summary['meters'])}; {loaded.summary['drum_notes']} drum notes kept"]
        lines += [f"  note: {n}" for n in loaded.notices]
        lines += [f"  [{w['index']}] {w['source']} ({w['hits']} hits)" for w in info["window_list"][:50]]
        if len(loaded.windows) > 50:
            lines.append(f"  ... {len(loaded.windows) - 50} more")
        _report(args, path, info, "\n".join(lines))
    return 1 if failures else 0


def _report(args, path: Path, info: dict, text: str) -> None:
    print(json.dumps({"file": str(path), **info}) if args.json else text)


def run_report(args) -> int:
    import torch

    from musicvae.evaluation.report import model_report

    torch.set_num_threads(args.num_threads or os.cpu_count() or 1)
    result = model_report(args.checkpoint, args.examples_path, args.split, args.num_samples, gmd_root=args.gmd_root)
    text = json.dumps(result)
    if args.output:
        from musicvae.fileio import atomic_write_text

        atomic_write_text(args.output, json.dumps(result, indent=1))
    print(text)
    return 0


def run_export(args) -> int:
    from musicvae.training.checkpoint import export_model

    metrics = json.loads(args.metrics.read_text()) if args.metrics else None
    print(export_model(args.checkpoint, args.output_dir, metrics, args.half))
    return 0


def run_bench(args) -> int:
    from musicvae.bench import run_bench as bench

    return bench(args)


def run_render(args) -> int:
    """``musicvae render IN.mid OUT.wav [--qpm Q] [--repeats N] [--soundfont SF2] [--sample_rate R]``."""
    from musicvae.fileio import atomic_write_bytes
    from musicvae.media.audio import SAMPLE_RATE, DrumSynth, decode_wav, default_synth, render_midi

    try:
        data = Path(args.input).read_bytes()
    except OSError as error:
        raise FileNotFoundError(f"{args.input}: cannot read the file ({error.strerror})") from None
    synth = DrumSynth(args.soundfont, args.sample_rate) if (args.soundfont or args.sample_rate != SAMPLE_RATE) else None
    wav = render_midi(data, args.qpm, args.repeats, synth)
    out = atomic_write_bytes(args.output, wav)
    used = synth or default_synth()
    samples, rate = decode_wav(wav)
    print(f"{out}: {len(samples) / rate:.1f} s, {used.description}")
    return 0


def run_directions(args) -> int:
    """``musicvae directions --checkpoint DIR [--examples_path data/gmd] [--num_directions 16]``."""
    import numpy as np

    from musicvae.api import TrainedModel
    from musicvae.data.storage import fingerprint, load_split
    from musicvae.latent.directions import VECTORS_FILE, directions_from_mu, encode_mu, save_directions, training_subset
    from musicvae.latent.steering import add_attribute_directions
    from musicvae.training.checkpoint import resolve_model_dir

    folder = resolve_model_dir(args.checkpoint)
    model = TrainedModel.load(folder)
    rng = np.random.default_rng(0)  # one stream: the train subset, then the measured validation grooves
    tokens = training_subset(load_split(args.examples_path, "train").tokens, args.max_windows, rng)
    mu = encode_mu(model, tokens)  # encoded once: the PCA and the attribute vectors share it
    directions = directions_from_mu(mu, tokens, args.num_directions)
    directions.info.update({"config": model.name, "step": model.meta.get("step"),
                            "data_fingerprint": fingerprint(args.examples_path), "split": "train"})
    if not getattr(args, "no_attributes", False):  # named attribute sliders, measured (latent/steering.py)
        validation = load_split(args.examples_path, "validation").tokens
        add_attribute_directions(directions, model, tokens, mu, validation, args.num_grooves, rng=rng)
    save_directions(folder, directions)
    shares = ", ".join(f"{e['name']} {100 * e['explained_variance']:.1f}%" for e in directions.entries[:5])
    print(f"{folder / VECTORS_FILE}: {len(directions.entries)} directions from {directions.info['windows']} "
          f"train windows ({shares}, ...)")
    return 0


def run_info(args) -> int:
    from musicvae.configs import CONFIGS, get_config
    from musicvae.model.network import MusicVAE

    if args.list:
        for name, config in CONFIGS.items():
            print(f"{name}: {config.description}")
        return 0
    config = get_config(args.config, args.hparams)
    model = MusicVAE(config.hparams)
    total = model.num_parameters()
    extra = sum(p.numel() for n, p in model.named_parameters() if "bias_hh" in n)
    print(json.dumps({"config": config.name, "hparams": config.hparams.to_dict()}, indent=1))
    print(f"parameters: {total:,} ({total - extra:,} with TF's single LSTM bias; "
          f"PyTorch's second LSTM bias adds {extra:,})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
