"""The one drum-pattern type of the project, and its tensor encodings.

Everything flows through :class:`DrumPattern`: MIDI -> pattern -> tensors -> model ->
tensors -> pattern -> MIDI/WAV/plot.  The encodings follow Magenta's ``DrumsConverter``
(spec §1.2): 9 drum classes, 16 steps per bar, a 512-way token per step whose bit ``c``
stands for class ``c`` (kick = bit 0), and a 10-dim roll for the encoder whose last entry
is the "nothing played" flag.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np

STEPS_PER_QUARTER = 4
STEPS_PER_BAR = 16
NUM_CLASSES = 9
NUM_TOKENS = 2**NUM_CLASSES  # 512
ROLL_DEPTH = NUM_CLASSES + 1  # 9 class bits + the "nothing played" flag
DEFAULT_QPM = 120.0
DEFAULT_VELOCITY = 80  # Magenta's OUTPUT_VELOCITY

# (name, pitches): the current (2019+) reduced GM map; the first pitch is the exemplar.
DRUM_CLASSES: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("kick", (36, 35)),
    ("snare", (38, 27, 28, 31, 32, 33, 34, 37, 39, 40, 56, 65, 66, 75, 85)),
    ("closed hi-hat", (42, 44, 54, 68, 69, 70, 71, 73, 78, 80, 22)),
    ("open hi-hat", (46, 67, 72, 74, 79, 81, 26)),
    ("low tom", (45, 29, 41, 43, 61, 64, 84)),
    ("mid tom", (48, 47, 60, 63, 77, 86, 87)),
    ("high tom", (50, 30, 62, 76, 83)),
    ("crash", (49, 52, 55, 57, 58)),
    ("ride", (51, 53, 59, 82)),
)
CLASS_NAMES: tuple[str, ...] = tuple(name for name, _ in DRUM_CLASSES)
EXEMPLAR_PITCHES: tuple[int, ...] = tuple(pitches[0] for _, pitches in DRUM_CLASSES)
PITCH_TO_CLASS: dict[int, int] = {
    pitch: index for index, (_, pitches) in enumerate(DRUM_CLASSES) for pitch in pitches
}
_BIT_VALUES = (1 << np.arange(NUM_CLASSES)).astype(np.int64)


def tokens_from_hits(hits: np.ndarray) -> np.ndarray:
    """[steps, 9] bool -> [steps] int64 tokens in 0..511 (bit c = class c)."""
    return (np.asarray(hits, dtype=np.int64) @ _BIT_VALUES).astype(np.int64)


def hits_from_tokens(tokens: np.ndarray) -> np.ndarray:
    """[..., steps] tokens -> [..., steps, 9] bool hits (inverse of tokens_from_hits)."""
    tokens = np.asarray(tokens, dtype=np.int64)
    return (tokens[..., None] & _BIT_VALUES) != 0


def roll_from_tokens(tokens: np.ndarray) -> np.ndarray:
    """[..., steps] tokens -> [..., steps, 10] float32 encoder input (NOR flag last)."""
    hits = hits_from_tokens(tokens)
    silent = ~hits.any(axis=-1, keepdims=True)
    return np.concatenate([hits, silent], axis=-1).astype(np.float32)


def roll_tensor(tokens):
    """Tokens [B, T] (a torch tensor) -> encoder roll [B, T, 10]: the torch twin of :func:`roll_from_tokens`.

    torch is imported here, not at the top: the caller holds a tensor, so it is loaded already, and
    everything that only needs patterns (the loader, the app's pages) stays free of it.
    """
    import torch

    bits = torch.arange(ROLL_DEPTH - 1, device=tokens.device)
    hits = ((tokens[..., None] >> bits) & 1).float()
    silent = (tokens == 0).float()[..., None]
    return torch.cat([hits, silent], dim=-1)


@dataclass
class DrumPattern:
    """A drum groove on the 16th-note grid.

    ``hits[t, c]`` is True when drum class ``c`` starts at step ``t``; ``velocities`` (same
    shape, 1..127, optional) keeps the played dynamics for display and playback; ``qpm`` is the
    playback tempo.  The model only sees ``hits``.
    """

    hits: np.ndarray
    velocities: np.ndarray | None = None
    qpm: float = DEFAULT_QPM
    source: str = field(default="", compare=False)  # provenance, e.g. "file.mid bars 5-8"

    def __post_init__(self) -> None:
        self.hits = np.asarray(self.hits, dtype=bool)
        if self.hits.ndim != 2 or self.hits.shape[1] != NUM_CLASSES:
            raise ValueError(f"hits must have shape [steps, {NUM_CLASSES}], got {self.hits.shape}")
        if self.velocities is not None:
            self.velocities = np.asarray(self.velocities, dtype=np.uint8)
            if self.velocities.shape != self.hits.shape:
                raise ValueError("velocities must have the same shape as hits")

    # -- construction -------------------------------------------------------------------
    @classmethod
    def empty(cls, num_bars: int = 4, qpm: float = DEFAULT_QPM) -> DrumPattern:
        return cls(np.zeros((num_bars * STEPS_PER_BAR, NUM_CLASSES), dtype=bool), qpm=qpm)

    @classmethod
    def from_tokens(cls, tokens: np.ndarray, qpm: float = DEFAULT_QPM, source: str = "") -> DrumPattern:
        return cls(hits_from_tokens(tokens), qpm=qpm, source=source)

    # -- views --------------------------------------------------------------------------
    @property
    def num_steps(self) -> int:
        return int(self.hits.shape[0])

    @property
    def num_bars(self) -> float:
        return self.num_steps / STEPS_PER_BAR

    @property
    def num_hits(self) -> int:
        return int(self.hits.sum())

    def to_tokens(self) -> np.ndarray:
        return tokens_from_hits(self.hits)

    def to_roll(self) -> np.ndarray:
        return roll_from_tokens(self.to_tokens())

    def velocity_grid(self) -> np.ndarray:
        """Velocities with a default for hits that carry none, zero where silent."""
        if self.velocities is not None:
            return np.where(self.hits, np.maximum(self.velocities, 1), 0).astype(np.uint8)
        return np.where(self.hits, DEFAULT_VELOCITY, 0).astype(np.uint8)

    def window(self, start_bar: int, num_bars: int = 4) -> DrumPattern:
        lo, hi = start_bar * STEPS_PER_BAR, (start_bar + num_bars) * STEPS_PER_BAR
        vel = None if self.velocities is None else self.velocities[lo:hi]
        return DrumPattern(self.hits[lo:hi], vel, self.qpm, self.source)

    def with_qpm(self, qpm: float) -> DrumPattern:
        return DrumPattern(self.hits, self.velocities, float(qpm), self.source)

    def same_hits(self, other: DrumPattern) -> bool:
        return self.hits.shape == other.hits.shape and bool((self.hits == other.hits).all())

    # -- MIDI output -----------------------------------------------------------------------
    def to_pretty_midi(self, qpm: float | None = None):
        """A PrettyMIDI with one drum instrument (channel 10), exemplar pitches, 16th notes."""
        import pretty_midi

        qpm = float(qpm or self.qpm)
        step_seconds = 60.0 / qpm / STEPS_PER_QUARTER
        midi = pretty_midi.PrettyMIDI(initial_tempo=qpm)
        drums = pretty_midi.Instrument(program=0, is_drum=True, name="Drums")
        velocities = self.velocity_grid()
        for step, cls in zip(*np.nonzero(self.hits)):
            start = step * step_seconds  # steps are >= 0, so no note before time 0
            drums.notes.append(
                pretty_midi.Note(
                    velocity=int(velocities[step, cls]),
                    pitch=EXEMPLAR_PITCHES[cls],
                    start=start,
                    end=start + step_seconds,
                )
            )
        drums.notes.sort(key=lambda n: (n.start, n.pitch))
        midi.instruments.append(drums)
        return midi

    def to_midi_bytes(self, qpm: float | None = None) -> bytes:
        buffer = io.BytesIO()
        self.to_pretty_midi(qpm).write(buffer)
        return buffer.getvalue()


def concatenate(patterns: list[DrumPattern]) -> DrumPattern:
    """Play patterns one after another (used for a whole interpolation as one groove)."""
    hits = np.concatenate([p.hits for p in patterns])
    vel = np.concatenate([p.velocity_grid() for p in patterns])
    return DrumPattern(hits, vel, patterns[0].qpm if patterns else DEFAULT_QPM)
