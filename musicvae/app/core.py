"""The playground's logic without Streamlit: models on disk, presets, scores, exports, URL values.

Everything here is plain Python (models are used through :mod:`musicvae.api`) so it can be tested
directly; the Streamlit modules (``ui``, ``modes``, ``latent``, ``streamlit_app.py``) only add widgets
and caching.
"""

from __future__ import annotations

import io
import json
import logging
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicvae.pattern import DrumPattern
from musicvae.resources import shipped

log = logging.getLogger(__name__)
CHECKPOINTS_ENV = "MUSICVAE_CHECKPOINTS_DIR"
PRESETS_DIR = shipped("assets") / "presets"
SAMPLE_MODEL = "hier-drums_4bar_small_aug"  # = api.DEFAULT_SAMPLE_MODEL (kept here to avoid importing torch early)
INTERPOLATE_MODEL = "hier-drums_4bar_small_hikl_aug"  # = api.DEFAULT_INTERPOLATE_MODEL

ROLES: dict[str, tuple[str, str]] = {
    "sample": (SAMPLE_MODEL, "Sampling model (low KL): the most natural grooves from random draws."),
    "interpolate": (INTERPOLATE_MODEL, "Interpolation model (high KL): reconstructs your grooves best, "
                    "so morphs start and end where you put them."),
}
ROLE_LABELS = {"sample": "Sampling (low KL)", "interpolate": "Interpolation (high KL)"}
MODE_ROLES = {"sample": "sample", "latent": "interpolate", "interpolate": "interpolate", "grid": "interpolate"}
HEADLINE_KEYS = (
    ("hit_f1", "hit F1"),
    ("sampled_accuracy", "sampled accuracy"),
    ("accuracy", "teacher-forced accuracy"),
    ("kl_bits", "KL bits"),
    ("distinct_reconstructions", "distinct reconstructions"),
)


# -- models on disk --------------------------------------------------------------------------
def checkpoints_root() -> Path:
    """``$MUSICVAE_CHECKPOINTS_DIR`` or the repository's ``checkpoints/``."""
    return Path(os.environ.get(CHECKPOINTS_ENV) or shipped("checkpoints"))


def model_dir(name: str) -> Path | None:
    folder = checkpoints_root() / name
    return folder if (folder / "model.safetensors").exists() else None


@dataclass(frozen=True)
class ModelPick:
    role: str  # the role asked for
    name: str  # the checkpoint folder used
    path: Path
    fallback: bool  # True when the other role's model stands in


def pick_model(role: str) -> ModelPick | None:
    """The model for a role; the other shipped model stands in when this one is missing."""
    wanted = ROLES[role][0]
    if (found := model_dir(wanted)) is not None:
        return ModelPick(role, wanted, found, False)
    for other, (name, _) in ROLES.items():
        if other != role and (found := model_dir(name)) is not None:
            return ModelPick(role, name, found, True)
    return None


def no_model_message() -> str:
    names = " and ".join(f"`{n}`" for n, _ in ROLES.values())
    return (f"No trained model is installed: {names} are missing from `{checkpoints_root()}`. "
            "You can still browse, hear and export the preset grooves; train a model with "
            "`musicvae train` (see the README) or point `MUSICVAE_CHECKPOINTS_DIR` at a folder of models.")


def model_key(path: Path) -> str:
    """A cache key that changes when the weights change."""
    weights = Path(path) / "model.safetensors"
    return f"{Path(path).resolve()}:{weights.stat().st_mtime_ns}"


def headline_metrics(folder: Path) -> dict:
    """metrics.json (or config.json's metrics) -> {label: value} of the headline numbers, and the step."""
    folder = Path(folder)
    metrics: dict = {}
    for name in ("metrics.json", "config.json"):
        path = folder / name
        if path.exists():
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError) as error:
                log.warning("cannot read the metrics in %s: %s", path, error)
                continue
            metrics = data.get("metrics", data) if name == "config.json" else data
            if metrics:
                break
    flat = dict(metrics)
    if isinstance(metrics.get("reconstruction"), dict):  # `musicvae report` output
        flat = {**metrics["reconstruction"], "split": metrics.get("split", "test")}
    for split in ("test", "validation"):  # nested per split: prefer test
        if isinstance(metrics.get(split), dict):
            flat = {**metrics[split], "split": split}
            break
    out = {label: flat[key] for key, label in HEADLINE_KEYS if isinstance(flat.get(key), int | float)}
    if "split" in flat:
        out["split"] = flat["split"]
    return out


# -- presets ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Preset:
    key: str  # file stem, used in URLs
    name: str
    pattern: DrumPattern
    info: dict


def load_presets(folder: Path = PRESETS_DIR) -> list[Preset]:
    """The shipped preset grooves (``presets.json`` + MIDI files), through the normal loader."""
    from musicvae.midi.loader import load_grooves
    from musicvae.midi.parse import InputError

    index_path = Path(folder) / "presets.json"
    if not index_path.exists():
        return []
    presets = []
    for entry in json.loads(index_path.read_text()):
        try:
            loaded = load_grooves((Path(folder) / entry["file"]).read_bytes(), entry["file"])
        except (OSError, InputError) as error:  # a broken preset is left out of the lists, not the page
            log.warning("preset %s left out: %s", entry["file"], error)
            continue
        pattern = loaded.windows[loaded.default_index]
        pattern.source = f"preset {entry['name']} ({entry.get('source', '')})"
        presets.append(Preset(Path(entry["file"]).stem, entry["name"], pattern.with_qpm(entry.get("bpm", 120)), entry))
    return presets


# -- scores -----------------------------------------------------------------
def reconstruction_scores(truth: DrumPattern, guess: DrumPattern) -> dict[str, float]:
    """Step accuracy (all 9 instruments right at a step) and hit precision/recall/F1."""
    t, g = truth.hits, guess.hits
    tp, fp, fn = int((t & g).sum()), int((~t & g).sum()), int((t & ~g).sum())
    precision, recall = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
    return {
        "step_accuracy": float((t == g).all(axis=1).mean()),
        "hit_precision": precision,
        "hit_recall": recall,
        "hit_f1": 2 * precision * recall / max(precision + recall, 1e-12),
    }


def describe(pattern: DrumPattern, qpm: float | None = None) -> str:
    """'58 hits: kick 12, snare 8, ...' (the busiest instruments first), and how it is played when the
    groove has a feel of its own: '· played: velocity 31-112, -18 to +22 ms off the grid' (ms at ``qpm``)."""
    from musicvae.pattern import CLASS_NAMES, STEPS_PER_QUARTER

    counts = pattern.hits.sum(axis=0)
    parts = [f"{CLASS_NAMES[c]} {int(counts[c])}" for c in np.argsort(-counts) if counts[c] > 0][:4]
    text = f"{pattern.num_hits} hits" + (": " + ", ".join(parts) if parts else " (silent)")
    if pattern.is_quantized or not pattern.num_hits:
        return text
    vel = pattern.velocity_grid()[pattern.hits]
    ms = pattern.offset_grid()[pattern.hits] * 60000.0 / float(qpm or pattern.qpm) / STEPS_PER_QUARTER
    timing = f", {ms.min():+.0f} to {ms.max():+.0f} ms off the grid" if np.any(ms != 0) else ""
    return text + f" · played: velocity {int(vel.min())}-{int(vel.max())}{timing}"


# -- exports ---------------------------------------------------------------------------------
def build_zip(
    patterns: list[DrumPattern],
    names: list[str],
    qpm: float,
    render: Callable[[DrumPattern], bytes] | None,
    extra: dict[str, bytes] | None = None,
) -> bytes:
    """A ZIP with ``name.mid`` + ``name.wav`` per groove (no WAVs without ``render``), and any extra files."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for pattern, name in zip(patterns, names, strict=True):
            archive.writestr(f"{name}.mid", pattern.to_midi_bytes(qpm))
            if render is not None:
                archive.writestr(f"{name}.wav", render(pattern))
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def safe_file_stem(text: str, default: str = "groove") -> str:
    """A download name built from our own labels (never a path the user controls)."""
    cleaned = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in text.lower()).strip("-")
    while "--" in cleaned:
        cleaned = cleaned.replace("--", "-")
    return cleaned[:60] or default


# -- URL state -------------------------------------------------------------------------------
MODES = {"sample": "Sample", "latent": "Latent sliders", "interpolate": "Interpolate", "grid": "Grid"}


def parse_number(text: str | None, kind: type, lo: float, hi: float, default):
    """A query-parameter number, clamped into [lo, hi]; ``default`` when missing or malformed."""
    if text is None:
        return default
    try:
        value = kind(float(text)) if kind is int else kind(text)
    except (TypeError, ValueError):
        return default
    if not np.isfinite(value):
        return default
    return kind(min(max(value, lo), hi))


def parse_models(text: str | None) -> dict[str, str]:
    """'latent:sample,grid:sample' -> {mode: role} (unknown modes and roles are left out)."""
    out = {}
    for part in (text or "").split(","):
        mode, _, role = part.partition(":")
        if mode in MODES and role in ROLES:
            out[mode] = role
    return out


def format_models(models: dict[str, str]) -> str:
    return ",".join(f"{mode}:{role}" for mode, role in models.items())


def parse_latent(text: str | None, limit: int = 8) -> dict[str, float]:
    """'pc:0:1.5;z:3:-0.2' -> {'pc:0': 1.5, 'z:3': -0.2} (slider positions clamped to +-3)."""
    out: dict[str, float] = {}
    for part in (text or "").split(";"):
        kind, _, rest = part.partition(":")
        index, _, value = rest.partition(":")
        if kind not in ("pc", "z") or not index.isdigit() or int(index) > 4096:
            continue
        out[f"{kind}:{int(index)}"] = round(float(parse_number(value or "0", float, -3.0, 3.0, 0.0)), 3)
        if len(out) >= limit:
            break
    return out


def format_latent(alphas: dict[str, float]) -> str:
    return ";".join(f"{key}:{value:g}" for key, value in alphas.items())


def parse_cell(text: str | None) -> tuple[int, int] | None:
    """'2,3' -> (2, 3): a grid cell (row, column), 1-based, at most 11."""
    row, _, col = (text or "").partition(",")
    if not (row.isdigit() and col.isdigit()):
        return None
    return min(max(int(row), 1), 11), min(max(int(col), 1), 11)


# -- uploads ---------------------------------------------------------------------------------
SIMILAR_ROLE = "interpolate"  # "similar to" encodes a groove: the high-KL model reconstructs grooves best
CHOICE_GROUPS = (("interp_a", "interp_b"), ("corner_0", "corner_1", "corner_2", "corner_3"), ("sim_base",),
                 ("latent_base",))
CHOICE_NAMES = {"interp_a": "groove A", "interp_b": "groove B", "corner_0": "the top-left corner",
                "corner_1": "the top-right corner", "corner_2": "the bottom-left corner",
                "corner_3": "the bottom-right corner", "sim_base": "the groove to vary",
                "latent_base": "the Latent sliders' start"}
LATENT_DEFAULT = "random"  # the Latent sliders' own default (a random z), not a library groove


@dataclass
class UploadRead:
    """What the loader made of one upload: grooves, or the reason; ``channels`` the user may call drums."""

    loaded: object | None  # musicvae.midi.loader.LoadedGrooves
    reason: str = ""
    channels: tuple[int, ...] = ()  # 1-based, likeliest first ('treat channel N as drums')


def read_upload(data: bytes, name: str, drum_channel: int | None = None) -> UploadRead:
    """The loader on an upload, never an exception: its one-sentence reason instead."""
    from musicvae.midi.loader import InputError, NoDrumsError, load_grooves

    try:
        loaded = load_grooves(data, name, drum_channel)
    except NoDrumsError as error:
        return UploadRead(None, str(error), tuple(error.channels))
    except InputError as error:
        return UploadRead(None, str(error))
    except Exception as error:  # the loader promises InputError only; never show a traceback anyway
        log.exception("the loader raised %s for %r", type(error).__name__, name)
        return UploadRead(None, f"The file could not be read ({type(error).__name__}).")
    channels = loaded.summary.get("channels", [])
    return UploadRead(loaded, "", tuple(channels) if 10 not in channels else ())


def drum_channel_offer(read: UploadRead, chosen: int | None) -> list[int]:
    """The channels to offer as 'treat channel N as drums' ([]: no offer): for an upload with no notes on
    channel 10 (read from a channel that looked like drums, or refused), and while a choice is in force."""
    offer = list(read.channels)
    if chosen is not None and chosen not in offer:
        offer.insert(0, chosen)
    return offer


def fill_removed(state, removed: set[str], labels: dict[str, str]) -> list[str]:
    """Choices (``state`` keys of CHOICE_GROUPS) that held a removed groove get another groove, never one that
    a sibling choice already holds (A and B, the four corners); one sentence per change, to show the user.

    ``labels``: the library after the removal (key -> label), in library order."""
    lines = []
    for group in CHOICE_GROUPS:
        for slot in group:
            if state.get(slot) not in removed:
                continue
            taken = {state.get(other) for other in group if other != slot}
            if slot == "latent_base":
                choice = LATENT_DEFAULT
            else:
                choice = next((k for k in labels if k not in removed and k not in taken), None)
            state[slot] = choice
            name = CHOICE_NAMES[slot]
            if choice is None:
                lines.append(f"The removed upload was {name}, which is now empty.")
            elif choice == LATENT_DEFAULT:
                lines.append(f"The removed upload was {name}, which is now a random z (the default).")
            else:
                lines.append(f"The removed upload was {name}, which is now {labels[choice]}.")
    return lines


def parse_puck(text: str | None) -> tuple[float, float] | None:
    """'0.25,0.7' -> (0.25, 0.7): the blend pad's puck (x across, y down, each clamped to 0..1)."""
    x, _, y = (text or "").partition(",")
    try:
        values = float(x), float(y)
    except ValueError:
        return None
    if not all(np.isfinite(v) for v in values):
        return None
    return tuple(min(max(v, 0.0), 1.0) for v in values)
