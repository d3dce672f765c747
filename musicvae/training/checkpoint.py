"""Checkpoints: safetensors weights + JSON, written atomically, loaded without unpickling.

A model folder holds ``model.safetensors`` and ``config.json`` (config name, full hparams,
step, data fingerprint, metrics): that is all it takes to rebuild the model.  Training
checkpoints add ``optimizer.safetensors`` and ``train_state.json`` (step, RNG states, optimizer
hyper-parameters) so a run resumes exactly.  Each checkpoint is written into a staging folder
and renamed into place (:func:`musicvae.fileio.atomic_folder`), so a ``kill -9`` at any moment
leaves either the old set or the new one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from musicvae.configs import Config, HParams, get_config
from musicvae.fileio import atomic_folder
from musicvae.model.groove import build_model
from musicvae.model.network import MusicVAE

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
OPTIMIZER_FILE = "optimizer.safetensors"
STATE_FILE = "train_state.json"
PREFIX = "step-"


class CheckpointError(ValueError):
    """A model folder that cannot be used (damaged weights, a config that does not fit); one sentence."""


def model_meta(config: Config, step: int, data_fingerprint: str = "", metrics: dict | None = None) -> dict:
    return {
        "config": config.name,
        "hparams": config.hparams.to_dict(),
        "step": int(step),
        "data_fingerprint": data_fingerprint,
        "metrics": metrics or {},
    }


def write_model_files(folder: Path, model: MusicVAE, meta: dict, half: bool = False) -> None:
    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    if half:
        tensors = {k: v.half() for k, v in tensors.items()}
    save_file(tensors, str(folder / MODEL_FILE), metadata={"format": "musicvae"})
    (folder / CONFIG_FILE).write_text(json.dumps(meta, indent=1))


def save_training_checkpoint(
    run_dir: Path,
    model: MusicVAE,
    optimizer: torch.optim.Optimizer,
    meta: dict,
    train_state: dict,
    keep: int = 3,
) -> Path:
    """Write step-N atomically under run_dir/checkpoints and keep the newest ``keep``."""
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{PREFIX}{meta['step']:08d}"
    # the same step saved twice (a final save right after a periodic one) replaces the old folder,
    # which is kept until the new one is in place (fileio.replace_folder)
    with atomic_folder(final) as tmp:
        write_model_files(tmp, model, meta)
        tensors, groups = _flatten_optimizer(optimizer)
        save_file(tensors, str(tmp / OPTIMIZER_FILE))
        state = {**train_state, "param_groups": groups, "torch_rng": torch.get_rng_state().tolist()}
        (tmp / STATE_FILE).write_text(json.dumps(state))
    for old in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(run_dir: Path) -> list[Path]:
    root = Path(run_dir) / "checkpoints"
    if not root.exists():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX))


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def resolve_model_dir(path: Path) -> Path:
    """A model folder, or a run dir whose newest checkpoint is used."""
    path = Path(path)
    if (path / MODEL_FILE).exists():
        return path
    latest = latest_checkpoint(path)
    if latest is None:
        raise FileNotFoundError(f"no checkpoint found in {path}")
    return latest


def read_meta(folder: Path) -> dict:
    path = Path(folder) / CONFIG_FILE
    try:
        return json.loads(path.read_text())
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError
        raise CheckpointError(f"{path} is damaged (not valid JSON: {error}); export or download the model "
                              "again.") from error


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file; CheckpointError (one sentence) when it is damaged or incomplete."""
    from safetensors import SafetensorError

    try:
        return load_file(str(path))
    except SafetensorError as error:
        raise CheckpointError(f"{path} is damaged or incomplete ({error}); export or download the model "
                              "again.") from error


def config_from_meta(meta: dict) -> Config:
    base = get_config(meta["config"]) if meta["config"] in _known_configs() else None
    hparams = HParams.from_dict(meta["hparams"])
    return Config(meta["config"], hparams, base.description if base else "")


def load_model(path: Path) -> tuple[MusicVAE, dict]:
    """Rebuild a model from a folder (or a run dir's newest checkpoint), in eval mode."""
    folder = resolve_model_dir(path)
    meta = read_meta(folder)
    try:
        model = build_model(config_from_meta(meta).hparams)
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{folder / CONFIG_FILE} does not describe a model ({type(error).__name__}: "
                              f"{error}).") from error
    tensors = read_tensors(folder / MODEL_FILE)
    try:
        model.load_state_dict({k: v.float() for k, v in tensors.items()})
    except RuntimeError as error:  # PyTorch lists every mismatch on its own line: keep the first
        detail = next((line.strip() for line in str(error).splitlines()[1:] if line.strip()), str(error))
        raise CheckpointError(f"{folder / MODEL_FILE} does not fit its {CONFIG_FILE} ({detail}).") from error
    model.eval()
    return model, meta


def export_model(source: Path, destination: Path, metrics: dict | None = None, half: bool = False) -> Path:
    """Copy a checkpoint's weights + config into a model folder, adding metrics.

    The folder is replaced as a whole (the old one is kept until the new one is in place)."""
    folder = resolve_model_dir(source)
    meta = read_meta(folder)
    if metrics is not None:
        meta["metrics"] = metrics
    destination = Path(destination)
    tensors = load_file(str(folder / MODEL_FILE))
    if half:
        tensors = {k: v.half() for k, v in tensors.items()}
    with atomic_folder(destination) as staged:
        save_file(tensors, str(staged / MODEL_FILE), metadata={"format": "musicvae"})
        (staged / CONFIG_FILE).write_text(json.dumps(meta, indent=1))
        if destination.exists():  # keep what is not ours (model card, directions, ...)
            for extra in destination.iterdir():
                if extra.name not in (MODEL_FILE, CONFIG_FILE):
                    shutil.copy2(extra, staged / extra.name)
    return destination


def restore_training(folder: Path, model: MusicVAE, optimizer: torch.optim.Optimizer) -> dict:
    """Load model, optimizer and RNG state from a training checkpoint; returns train_state."""
    model.load_state_dict(read_tensors(folder / MODEL_FILE))
    state = json.loads((folder / STATE_FILE).read_text())
    _unflatten_optimizer(optimizer, read_tensors(folder / OPTIMIZER_FILE), state["param_groups"])
    torch.set_rng_state(torch.tensor(state.pop("torch_rng"), dtype=torch.uint8))
    state.pop("param_groups")
    return state


def _flatten_optimizer(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict]]:
    sd = optimizer.state_dict()
    tensors = {}
    for index, values in sd["state"].items():
        for name, value in values.items():
            tensor = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"{index}.{name}"] = tensor.detach().contiguous()
    return tensors, sd["param_groups"]


def _unflatten_optimizer(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list[dict]
) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = tensor
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def _known_configs() -> set[str]:
    from musicvae.configs import CONFIGS

    return set(CONFIGS)
