"""A one-shot sample kit for the browser looper, rendered once through the app's own FluidSynth.

Each of the 9 drum classes (``pattern.EXEMPLAR_PITCHES``) is played alone at a few velocity
layers (40, 80, 120) by the process-wide :class:`DrumSynth` of the audio module (same soundfont,
same 22.05 kHz rate, same synth settings as the WAV export), so the looper sounds like the export.
Each one-shot is cut where its decay falls 60 dB under its peak (at most 2 s, with a short fade),
and the whole kit is scaled by ONE factor (the loudest sample at -1 dBFS), so the relative levels
of classes and layers stay FluidSynth's.  In the browser a hit of velocity ``v`` plays the softest
layer ``L >= v`` (the loudest for harder hits) with gain ``(v / L) ** 2``: FluidSynth's velocity
curve is about quadratic (measured peaks of the kick: 0.05 / 0.21 / 0.58 at 40 / 80 / 120).

Cached twice: on disk as 16-bit mono WAVs in ``<cache>/kit-<key>/`` (``<cache>`` is
``$MUSICVAE_CACHE_DIR`` or ``$XDG_CACHE_HOME/musicvae`` or ``~/.cache/musicvae``; ``<key>`` hashes
the soundfont's path, size and mtime, the rate, the layers and the kit format), written as one
atomic folder, and in memory per process.  :func:`kit_payload` gives the kit as ``data:`` URLs
(nothing is fetched from anywhere), the form the player component takes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicvae.fileio import atomic_folder
from musicvae.media import audio as _audio
from musicvae.pattern import CLASS_NAMES, EXEMPLAR_PITCHES

# Bump when the rendering below changes: it is part of the cache key. (2: kits rendered while the
# renderer was still changing, with format 1, may sit in ~/.cache on development machines.)
KIT_FORMAT = 2
LAYERS: tuple[int, ...] = (40, 80, 120)
NOTE_SECONDS = 0.125  # a 16th at 120 qpm: the note length the WAV export uses at its default tempo
MAX_SECONDS = 2.0  # crash and ride ring for 4 s; the tail past 2 s is faded out
FADE_SECONDS = 0.02
LONG_FADE_SECONDS = 0.3  # fade used when a sample is cut at MAX_SECONDS
FLOOR_DB = -60.0  # a sample ends where its envelope stays under peak + FLOOR_DB
DITHER_FLOOR = 1.5e-4  # FluidSynth's 16-bit output carries dither (~3e-5): never chase it
SILENCE_PEAK = 1e-3  # a one-shot quieter than this (before scaling) means the kit does not play
CACHE_ENV = "MUSICVAE_CACHE_DIR"


class KitError(RuntimeError):
    """The kit cannot be rendered (no soundfont, no drum kit, a silent class); the message says why."""


@dataclass(frozen=True)
class DrumKit:
    """One-shot samples: ``samples[c][l]`` is class ``c`` at velocity ``layers[l]`` (float32 mono)."""

    key: str
    sample_rate: int
    layers: tuple[int, ...]
    samples: tuple[tuple[np.ndarray, ...], ...]
    soundfont: str
    folder: Path

    @property
    def classes(self) -> tuple[str, ...]:
        return CLASS_NAMES

    def wav(self, cls: int, layer: int) -> bytes:
        return _audio.wav_bytes(self.samples[cls][layer], self.sample_rate)


def cache_root() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "musicvae"


def kit_key(soundfont: Path, sample_rate: int, layers: tuple[int, ...] = LAYERS) -> str:
    """A short hash of what the kit depends on (hashing the 148 MB file itself would cost ~0.3 s)."""
    stat = soundfont.stat()
    ident = json.dumps([str(soundfont), stat.st_size, stat.st_mtime_ns, int(sample_rate), list(layers),
                        list(EXEMPLAR_PITCHES), NOTE_SECONDS, MAX_SECONDS, FLOOR_DB, KIT_FORMAT])
    return hashlib.sha256(ident.encode()).hexdigest()[:16]


def _trim(samples: np.ndarray, rate: int) -> np.ndarray:
    """Cut the one-shot where its 10 ms envelope stays under the floor; fade the end."""
    block = max(1, rate // 100)
    usable = samples[: len(samples) // block * block]
    envelope = np.abs(usable).reshape(-1, block).max(axis=1)
    peak = float(envelope.max()) if envelope.size else 0.0
    floor = max(peak * 10 ** (FLOOR_DB / 20), DITHER_FLOOR)
    loud = np.nonzero(envelope > floor)[0]
    end = (int(loud[-1]) + 2) * block if loud.size else block
    limit = int(MAX_SECONDS * rate)
    fade = int(FADE_SECONDS * rate)
    if end > limit:
        end, fade = limit, int(LONG_FADE_SECONDS * rate)
    out = samples[:end].astype(np.float32, copy=True)
    fade = min(fade, len(out))
    if fade:
        out[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return out


def render_kit_samples(synth=None, layers: tuple[int, ...] = LAYERS) -> tuple[tuple[np.ndarray, ...], ...]:
    """Render every class at every layer through FluidSynth; one common scale for the whole kit."""
    synth = synth or _audio.default_synth()
    raw: list[list[np.ndarray]] = []
    for name, pitch in zip(CLASS_NAMES, EXEMPLAR_PITCHES, strict=True):
        row = []
        for velocity in layers:
            event = _audio.NoteEvent(0.0, int(pitch), int(velocity), NOTE_SECONDS)
            samples = synth.render_events([event], MAX_SECONDS, loop=False)
            if float(np.max(np.abs(samples))) < SILENCE_PEAK:
                raise KitError(f"FluidSynth rendered silence for the {name} (pitch {pitch}, velocity {velocity}) "
                               f"with {synth.description}: the soundfont's drum kit does not play.")
            row.append(_trim(samples, synth.sample_rate))
        raw.append(row)
    top = max(float(np.max(np.abs(s))) for row in raw for s in row)
    scale = _audio.PEAK / top
    return tuple(tuple((s * scale).astype(np.float32) for s in row) for row in raw)


def _file_name(cls: int, velocity: int) -> str:
    return f"{cls}-{CLASS_NAMES[cls].replace(' ', '_')}-v{velocity}.wav"


def _load(folder: Path, key: str, sample_rate: int, layers: tuple[int, ...]) -> tuple | None:
    try:
        meta = json.loads((folder / "kit.json").read_text())
        if meta.get("key") != key:
            return None
        rows = []
        for cls in range(len(CLASS_NAMES)):
            row = []
            for velocity in layers:
                samples, rate = _audio.decode_wav((folder / _file_name(cls, velocity)).read_bytes())
                if rate != sample_rate:
                    return None
                row.append(samples.astype(np.float32))
            rows.append(tuple(row))
        return tuple(rows)
    except (OSError, ValueError, EOFError):
        return None


_KITS: dict[tuple, DrumKit] = {}
_PAYLOADS: dict[tuple[str, str], dict] = {}
_LOCK = threading.Lock()


def load_kit(synth=None, cache_dir: str | os.PathLike | None = None, layers: tuple[int, ...] = LAYERS) -> DrumKit:
    """The kit for ``synth`` (default: the app's soundfont and rate): from memory, else from disk,
    else rendered (only then is the app's synth created: loading FluidR3 costs ~0.1-0.2 s).

    Raises :class:`KitError` (or the audio module's ``AudioError``) with one sentence when no
    soundfont or no working drum kit is there: never a silent kit.
    """
    soundfont = Path(synth.soundfont) if synth is not None else _audio.find_soundfont()
    sample_rate = int(synth.sample_rate) if synth is not None else int(_audio.SAMPLE_RATE)
    key = kit_key(soundfont, sample_rate, layers)
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    folder = root / f"kit-{key}"
    memo = (str(folder), key)
    with _LOCK:
        if memo in _KITS:
            return _KITS[memo]
        samples = _load(folder, key, sample_rate, layers)
        if samples is None:
            synth = synth or _audio.default_synth(sample_rate)
            if Path(synth.soundfont) != soundfont:  # pragma: no cover - the soundfont changed under us
                raise KitError(f"the app's synth plays {synth.soundfont}, not {soundfont}")
            samples = render_kit_samples(synth, layers)
            try:
                root.mkdir(parents=True, exist_ok=True)
                with atomic_folder(folder, durable=False) as staged:
                    for cls, row in enumerate(samples):
                        for velocity, one in zip(layers, row, strict=True):
                            (staged / _file_name(cls, velocity)).write_bytes(_audio.wav_bytes(one, sample_rate))
                    (staged / "kit.json").write_text(json.dumps({
                        "key": key, "soundfont": str(soundfont), "kit": synth.kit_name,
                        "sample_rate": sample_rate, "layers": list(layers),
                        "classes": list(CLASS_NAMES), "pitches": list(EXEMPLAR_PITCHES)}, indent=1))
            except OSError:  # a read-only home is no reason to play nothing: keep the kit in memory
                pass
            # read back what the WAVs hold, so the in-memory kit equals a kit loaded from disk
            samples = tuple(tuple(_audio.decode_wav(_audio.wav_bytes(s, sample_rate))[0] for s in row)
                            for row in samples)
        kit = DrumKit(key, sample_rate, tuple(layers), samples, str(soundfont), folder)
        _KITS[memo] = kit
        return kit


def kit_payload(kit: DrumKit | None = None) -> dict:
    """The kit as the player takes it: ``{"id", "sample_rate", "layers", "classes", "samples"}``
    where ``samples[c][l]`` is a ``data:audio/wav;base64,...`` URL; computed once per kit."""
    kit = kit or load_kit()
    memo = (kit.key, str(kit.folder))  # the same key in another cache folder may hold other samples
    with _LOCK:
        if memo not in _PAYLOADS:
            urls = [[f"data:audio/wav;base64,{base64.b64encode(kit.wav(c, j)).decode('ascii')}"
                     for j in range(len(kit.layers))] for c in range(len(kit.samples))]
            _PAYLOADS[memo] = {"id": kit.key, "sample_rate": kit.sample_rate, "layers": list(kit.layers),
                               "classes": list(CLASS_NAMES), "samples": urls}
        return _PAYLOADS[memo]


def kit_id(kit: DrumKit | None = None) -> str:
    return (kit or load_kit()).key


HI_HATS = (2, 3)  # closed and open hi-hat: FluidSynth's exclusive class, a hat hit cuts a ringing open hat
OPEN_HAT = 3
CHOKE_SECONDS = 0.015


def layer_for(velocity: int, layers: tuple[int, ...] = LAYERS) -> tuple[int, float]:
    """(layer index, gain) for a hit: the softest layer at least as loud as the hit (the loudest
    for harder hits), scaled by ``(velocity / layer) ** 2``; ``looper.js`` does the same."""
    index = next((i for i, layer in enumerate(layers) if layer >= velocity), len(layers) - 1)
    return index, min(2.5, (float(velocity) / layers[index]) ** 2)


def mix_pattern(kit: DrumKit, pattern, qpm: float) -> np.ndarray:
    """What the browser looper plays for one pass of ``pattern`` at ``qpm``, mixed offline (float32
    mono at the kit's rate, tails kept): the kit's samples at each hit, velocity layers and gains,
    hi-hat choke, each hit at its step plus its offset (a hit played early on the first step starts at 0, as
    in the looper's first pass).  For tests and for comparing the looper with the WAV export."""
    rate = kit.sample_rate
    step = 60.0 / float(qpm) / 4
    velocities = pattern.velocity_grid()
    offsets = pattern.offset_grid() if hasattr(pattern, "offset_grid") else np.zeros(pattern.hits.shape)
    hits = sorted((int(round(max(0.0, (t + float(offsets[t, c])) * step) * rate)), int(t), int(c))
                  for t, c in zip(*np.nonzero(pattern.hits), strict=True))
    ends = [start + len(kit.samples[c][layer_for(int(velocities[t, c]), kit.layers)[0]]) for start, t, c in hits]
    out = np.zeros(max(ends, default=0) + 1, dtype=np.float32)
    for i, (start, t, c) in enumerate(hits):
        layer, gain = layer_for(int(velocities[t, c]), kit.layers)
        one = kit.samples[c][layer] * np.float32(gain)
        if c == OPEN_HAT:  # cut by the next hat hit after it
            cut = next((s for s, _, other in hits[i + 1:] if other in HI_HATS and s > start), None)
            if cut is not None and cut - start < len(one):
                fade = int(CHOKE_SECONDS * rate)
                one = one[: cut - start + fade].copy()
                one[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)[-len(one):]
        out[start:start + len(one)] += one
    return out
