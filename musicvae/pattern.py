"""The one drum-pattern type of the project, and its tensor encodings.

Everything flows through :class:`DrumPattern`: MIDI -> pattern -> tensors -> model ->
tensors -> pattern -> MIDI/WAV/plot.  Two tensor encodings:

- categorical, as Magenta's ``DrumsConverter`` (spec §1.2): 9 drum classes, 16 steps per bar, a
  512-way token per step whose bit ``c`` stands for class ``c`` (kick = bit 0), and a 10-dim roll
  for the encoder whose last entry is the "nothing played" flag;
- groove, as Magenta's ``GrooveConverter`` (spec §1.3): per step 27 numbers in blocks, 9 hits, 9
  velocities (0-1) and 9 timing offsets (-1..1, twice the offset in steps).  One deliberate
  difference: our offsets are positive when a note is played *late* (Magenta's are positive early).
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
GROOVE_DEPTH = 3 * NUM_CLASSES  # [hits, velocities, offsets] per step
MAX_OFFSET = 0.5  # a note belongs to its nearest step, so it is at most half a step off

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


def groove_from_grids(hits: np.ndarray, velocities: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """hits [..., T, 9] bool, velocities 0..127, offsets in steps -> [..., T, 27] float32 groove frames.

    Silent cells are all zero (the model's velocity and offset losses count them, spec §2.5)."""
    hits = np.asarray(hits, dtype=bool)
    vel = np.where(hits, np.asarray(velocities, dtype=np.float32) / 127.0, 0.0)
    off = np.where(hits, np.clip(np.asarray(offsets, dtype=np.float32), -MAX_OFFSET, MAX_OFFSET) * 2.0, 0.0)
    return np.concatenate([hits.astype(np.float32), vel, off], axis=-1).astype(np.float32)


@dataclass
class DrumPattern:
    """A drum groove on the 16th-note grid, with how it was (or should be) played.

    ``hits[t, c]`` is True when drum class ``c`` starts at step ``t``; ``velocities`` (same
    shape, 1..127, optional: 80 when absent) are the dynamics; ``offsets`` (same shape, in steps,
    -0.5..0.5, positive = late, optional: 0 when absent) are the microtiming; ``qpm`` is the
    playback tempo.  The categorical models see ``hits`` only; the groove models see all three.
    """

    hits: np.ndarray
    velocities: np.ndarray | None = None
    qpm: float = DEFAULT_QPM
    source: str = field(default="", compare=False)  # provenance, e.g. "file.mid bars 5-8"
    offsets: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.hits = np.asarray(self.hits, dtype=bool)
        if self.hits.ndim != 2 or self.hits.shape[1] != NUM_CLASSES:
            raise ValueError(f"hits must have shape [steps, {NUM_CLASSES}], got {self.hits.shape}")
        if self.velocities is not None:
            self.velocities = np.asarray(self.velocities, dtype=np.uint8)
            if self.velocities.shape != self.hits.shape:
                raise ValueError("velocities must have the same shape as hits")
        if self.offsets is not None:
            self.offsets = np.clip(np.asarray(self.offsets, dtype=np.float32), -MAX_OFFSET, MAX_OFFSET)
            if self.offsets.shape != self.hits.shape:
                raise ValueError("offsets must have the same shape as hits")

    # -- construction -------------------------------------------------------------------
    @classmethod
    def empty(cls, num_bars: int = 4, qpm: float = DEFAULT_QPM) -> DrumPattern:
        return cls(np.zeros((num_bars * STEPS_PER_BAR, NUM_CLASSES), dtype=bool), qpm=qpm)

    @classmethod
    def from_tokens(cls, tokens: np.ndarray, qpm: float = DEFAULT_QPM, source: str = "") -> DrumPattern:
        return cls(hits_from_tokens(tokens), qpm=qpm, source=source)

    @classmethod
    def from_groove(cls, frames: np.ndarray, qpm: float = DEFAULT_QPM, source: str = "") -> DrumPattern:
        """[T, 27] groove frames (as :meth:`to_groove` makes, or a model decodes) -> pattern.

        A hit is a frame value above 0.5; velocities are clamped to 1..127 (a model can say 0,
        spec pitfall 13) and offsets to half a step."""
        frames = np.asarray(frames, dtype=np.float32)
        hits = frames[:, :NUM_CLASSES] > 0.5
        vel = np.clip(np.rint(frames[:, NUM_CLASSES : 2 * NUM_CLASSES] * 127.0), 1, 127)
        off = frames[:, 2 * NUM_CLASSES :] / 2.0
        return cls(hits, np.where(hits, vel, 0).astype(np.uint8), qpm, source, np.where(hits, off, 0.0))

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

    @property
    def has_timing(self) -> bool:
        """Whether some hit is played off the grid (offsets that are all 0 say nothing)."""
        return self.offsets is not None and bool(np.any(self.offset_grid() != 0))

    @property
    def is_quantized(self) -> bool:
        """True when the pattern carries no feel of its own (every hit on the grid at one velocity)."""
        return self.velocities is None and not self.has_timing

    def to_groove(self) -> np.ndarray:
        """[T, 27] float32 groove frames (hits, velocities / 127, 2 x offsets); see the module doc."""
        return groove_from_grids(self.hits, self.velocity_grid(), self.offset_grid())

    def quantized(self, velocity: int | None = None) -> DrumPattern:
        """The same hits on the grid: at one ``velocity``, or without velocities (80) when None."""
        vel = None if velocity is None else np.where(self.hits, velocity, 0).astype(np.uint8)
        return DrumPattern(self.hits, vel, self.qpm, self.source)

    def offset_grid(self) -> np.ndarray:
        """Offsets in steps (positive = late), zero where silent or when the pattern has none."""
        if self.offsets is None:
            return np.zeros(self.hits.shape, dtype=np.float32)
        return np.where(self.hits, self.offsets, 0.0).astype(np.float32)

    def onset_seconds(self, qpm: float | None = None) -> np.ndarray:
        """[T, 9] onset time of each cell in seconds, offsets included, never before 0."""
        step_seconds = 60.0 / float(qpm or self.qpm) / STEPS_PER_QUARTER
        steps = np.arange(self.num_steps, dtype=np.float64)[:, None] + self.offset_grid()
        return np.maximum(steps, 0.0) * step_seconds

    def velocity_grid(self) -> np.ndarray:
        """Velocities with a default for hits that carry none, zero where silent."""
        if self.velocities is not None:
            return np.where(self.hits, np.maximum(self.velocities, 1), 0).astype(np.uint8)
        return np.where(self.hits, DEFAULT_VELOCITY, 0).astype(np.uint8)

    def window(self, start_bar: int, num_bars: int = 4) -> DrumPattern:
        lo, hi = start_bar * STEPS_PER_BAR, (start_bar + num_bars) * STEPS_PER_BAR
        vel = None if self.velocities is None else self.velocities[lo:hi]
        off = None if self.offsets is None else self.offsets[lo:hi]
        return DrumPattern(self.hits[lo:hi], vel, self.qpm, self.source, off)

    def with_qpm(self, qpm: float) -> DrumPattern:
        return DrumPattern(self.hits, self.velocities, float(qpm), self.source, self.offsets)

    def same_hits(self, other: DrumPattern) -> bool:
        return self.hits.shape == other.hits.shape and bool((self.hits == other.hits).all())

    # -- MIDI output -----------------------------------------------------------------------
    def to_pretty_midi(self, qpm: float | None = None):
        """A PrettyMIDI with one drum instrument (channel 10), exemplar pitches, 16th notes.

        Offsets move each onset off the grid; a note played early on step 0 starts at 0, never before."""
        import pretty_midi

        qpm = float(qpm or self.qpm)
        step_seconds = 60.0 / qpm / STEPS_PER_QUARTER
        midi = pretty_midi.PrettyMIDI(initial_tempo=qpm, resolution=480)  # 120 ticks a 16th: offsets keep ~1 ms
        drums = pretty_midi.Instrument(program=0, is_drum=True, name="Drums")
        velocities = self.velocity_grid()
        onsets = self.onset_seconds(qpm)
        for step, cls in zip(*np.nonzero(self.hits)):
            start = float(onsets[step, cls])
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
    off = None
    if any(p.offsets is not None for p in patterns):
        off = np.concatenate([p.offset_grid() for p in patterns])
    return DrumPattern(hits, vel, patterns[0].qpm if patterns else DEFAULT_QPM, offsets=off)
