"""``musicvae generate``: sample, interpolate, reconstruct or humanize 4-bar grooves to MIDI files through the API."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from musicvae.cli.common import DRUM_CHANNEL_HELP, midi_channel, positive_int


def add_parser(sub) -> None:
    p = sub.add_parser("generate", help="sample, interpolate, reconstruct or humanize 4-bar grooves to MIDI files")
    p.add_argument("--config", default=None, help="expected config name (checked against the checkpoint)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--checkpoint", "--checkpoint_file", dest="checkpoint", type=Path, default=None,
                        help="a model folder (default: the shipped model for the mode)")
    source.add_argument("--run_dir", type=Path, default=None, help="use the newest checkpoint of a training run")
    p.add_argument("--mode", choices=["sample", "interpolate", "reconstruct", "humanize"], required=True,
                   help="reconstruct: write --input_midi_1's window as the model sees it and the model's version; "
                        "humanize: play --input_midi_1's window (quantized) with a drummer's velocities and timing")
    p.add_argument("--humanize", action="store_true",
                   help="sample/interpolate: play the results with velocities and timing (the groove model)")
    p.add_argument("--humanize_checkpoint", type=Path, default=None,
                   help="the groove model for --humanize (default: the shipped one)")
    p.add_argument("--variation", type=float, default=0.0,
                   help="humanize: 0 = the model's most likely performance (default); e.g. 1.0 = vary it per --seed")
    p.add_argument("--num_outputs", type=positive_int, default=5,
                   help="grooves to write; for interpolate, both endpoints included (default 5)")
    p.add_argument("--temperature", type=float, default=0.5, help="softmax temperature, 0 = greedy (default 0.5)")
    p.add_argument("--playable", action=argparse.BooleanOptionalAction, default=True,
                   help="never a step needing more hands than a drummer has (kick and hi-hat pedal are the feet; "
                        "an input groove's own steps are always allowed); --no-playable: Magenta's decoding "
                        "(default: playable)")
    p.add_argument("--input_midi_1", type=Path)
    p.add_argument("--input_midi_2", type=Path)
    p.add_argument("--window_1", type=int, default=None, help="which 4-bar window of input 1 (see inspect)")
    p.add_argument("--window_2", type=int, default=None, help="which 4-bar window of input 2")
    p.add_argument("--drum_channel", type=midi_channel, default=None, help=DRUM_CHANNEL_HELP + " in the inputs")
    p.add_argument("--method", choices=["slerp", "lerp"], default="slerp")
    p.add_argument("--spacing", choices=["even", "uniform"], default="even",
                   help="interpolation steps: even = each step changes about as many hits (default); "
                        "uniform = equal steps of t (Magenta's)")
    p.add_argument("--refine_steps", type=int, default=100,
                   help="gradient steps on z after the encoder for input grooves (default 100; 0 = plain encoder)")
    p.add_argument("--anchor", action=argparse.BooleanOptionalAction, default=True,
                   help="interpolate/reconstruct: anchor the input grooves (their code plus a per-step logit bias) "
                        "so the morph starts and ends on them exactly (default); --no-anchor: the model's own path")
    p.add_argument("--output_dir", required=True, type=Path)
    p.add_argument("--qpm", type=float, default=120.0, help="tempo of the written MIDI (default 120)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--attribute", default="",
                   help="steer with measured attribute vectors, e.g. density=+1.0,syncopation=-0.5")
    p.set_defaults(run=run)


def run(args) -> int:
    from musicvae.api import DEFAULT_INTERPOLATE_MODEL, DEFAULT_SAMPLE_MODEL, TrainedModel, shipped_checkpoint
    from musicvae.fileio import atomic_write_bytes
    from musicvae.model.refine import RefineSettings
    from musicvae.training.checkpoint import resolve_model_dir

    if args.variation < 0:
        raise ValueError("--variation must be 0 or more")
    if args.mode == "humanize":
        return _humanize(args)
    if args.checkpoint or args.run_dir:
        folder = resolve_model_dir(args.checkpoint or args.run_dir)
    else:
        folder = shipped_checkpoint(DEFAULT_SAMPLE_MODEL if args.mode == "sample" else DEFAULT_INTERPOLATE_MODEL)
    if args.refine_steps < 0:
        raise ValueError("--refine_steps must be 0 or more")
    model = TrainedModel.load(folder)
    if args.config and args.config != model.name:
        raise ValueError(f"--config {args.config} does not match the checkpoint's config {model.name}")
    offset = _attribute_offset(folder, args.attribute, model.z_size) if args.attribute else None
    refine = RefineSettings(steps=args.refine_steps, time_budget_s=None) if args.refine_steps > 0 else None
    if args.mode == "reconstruct":
        return _reconstruct(model, args, refine)
    if args.mode == "sample":
        patterns = model.sample(args.num_outputs, args.temperature, args.seed, args.qpm, z_offset=offset,
                                playable=args.playable)
    else:
        if not (args.input_midi_1 and args.input_midi_2):
            raise ValueError("--mode interpolate needs --input_midi_1 and --input_midi_2")
        if args.num_outputs < 2:
            raise ValueError("--num_outputs must be at least 2 for interpolate (both endpoints count)")
        a = _load_input(args.input_midi_1, args.window_1, args.drum_channel)
        b = _load_input(args.input_midi_2, args.window_2, args.drum_channel)
        patterns = model.interpolate(a, b, args.num_outputs, args.method, args.temperature, args.seed,
                                     qpm=args.qpm, z_offset=offset, spacing=args.spacing, refine=refine,
                                     anchor=args.anchor, playable=args.playable)
    if args.humanize:
        patterns = _groove_model(args.humanize_checkpoint).humanize(patterns, args.variation, args.seed)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    for i, pattern in enumerate(patterns):
        path = args.output_dir / f"{model.name}_{args.mode}_{i + 1:02d}-of-{len(patterns):02d}.mid"
        atomic_write_bytes(path, pattern.to_midi_bytes(args.qpm))
        print(path)
    return 0


def _reconstruct(model, args, refine) -> int:
    """Write the input window as the model sees it and its greedy reconstruction; print their hit F1 (the
    model's own); with --anchor also the anchored decode, which is the input exactly (not a model figure)."""
    from musicvae.evaluation.quality import window_f1

    if not args.input_midi_1:
        raise ValueError("--mode reconstruct needs --input_midi_1")
    source = _load_input(args.input_midi_1, args.window_1, args.drum_channel)
    codes = model.encode_anchored([source], refine) if args.anchor else None  # one encoding for both decodes
    [recon] = model.reconstruct([source], refine, playable=args.playable, codes=codes)
    outputs = {"input": source, "recon": recon}
    if args.anchor:
        [outputs["anchored"]] = model.reconstruct([source], anchor=True, playable=args.playable, codes=codes)
    _write_beside_input(args, outputs)
    f1 = float(window_f1(source.hits[None], recon.hits[None])[0])
    how = f"refined, {args.refine_steps} steps" if refine else "plain encoder"
    print(f"hit F1 {f1:.3f} between the input and the model's own reconstruction ({how})")
    if args.anchor:
        exact = bool((outputs["anchored"].hits == source.hits).all())
        print("the anchored decode is the input " + ("exactly" if exact else "NOT exactly (please report this)")
              + " (an anchor's doing, not the model's: the F1 above is the model's)")
    return 0


def _write_beside_input(args, patterns: dict) -> None:
    """Write ``STEM_SUFFIX.mid`` per (suffix, pattern) into --output_dir; STEM is --input_midi_1's name made
    safe (an untrusted file name never becomes a path)."""
    from musicvae.fileio import atomic_write_bytes

    args.output_dir.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(args.input_midi_1.name).stem)[:60] or "groove"
    for suffix, pattern in patterns.items():
        path = args.output_dir / f"{stem}_{suffix}.mid"
        atomic_write_bytes(path, pattern.to_midi_bytes(args.qpm))
        print(path)


def _groove_model(folder: Path | None):
    from musicvae.api import DEFAULT_HUMANIZE_MODEL, GrooveModel, shipped_checkpoint
    from musicvae.training.checkpoint import resolve_model_dir

    return GrooveModel.load(resolve_model_dir(folder) if folder else shipped_checkpoint(DEFAULT_HUMANIZE_MODEL))


def _humanize(args) -> int:
    """Write --input_midi_1's window quantized (velocity 80, on the grid) and humanized; print what changed."""
    import numpy as np


    if not args.input_midi_1:
        raise ValueError("--mode humanize needs --input_midi_1")
    model = _groove_model(args.checkpoint or args.run_dir or args.humanize_checkpoint)
    if args.config and args.config != model.name:
        raise ValueError(f"--config {args.config} does not match the checkpoint's config {model.name}")
    source = _load_input(args.input_midi_1, args.window_1, args.drum_channel).quantized()
    [played] = model.humanize([source], args.variation, args.seed)
    _write_beside_input(args, {"quantized": source, "humanized": played})
    velocities = played.velocity_grid()[played.hits]
    offsets_ms = np.abs(played.offset_grid()[played.hits]) * 60000.0 / args.qpm / 4
    print(f"{played.num_hits} hits kept; velocities {int(velocities.min())}-{int(velocities.max())} "
          f"({np.unique(velocities).size} distinct); median |offset| {np.median(offsets_ms):.1f} ms "
          f"at {args.qpm:g} qpm")
    return 0


def _load_input(path: Path, window: int | None, drum_channel: int | None = None):
    from musicvae.midi.loader import InputError, load_grooves

    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(f"{path}: cannot read the file ({error.strerror}).") from None
    loaded = load_grooves(data, path.name, drum_channel)
    index = loaded.default_index if window is None else window
    if not 0 <= index < len(loaded.windows):
        raise InputError(f"{path}: window {index} does not exist (it has {len(loaded.windows)}; see inspect).")
    return loaded.windows[index]


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
