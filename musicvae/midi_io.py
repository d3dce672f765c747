"""MIDI in: bytes -> drum hits on the 16th-note grid, quantized in beats (ticks).

One loader serves ``musicvae prepare``, ``musicvae inspect``, ``generate`` and the app.
Quantizing ticks instead of seconds means tempo changes never break the grid (spec §1.1
pitfall): a step is ``round(tick * 4 / ppq)``.  Sections with another meter than 16 steps per
bar (4/4, 2/2, 8/8) are set aside, and tracks are split at empty bars like Magenta's
``extract_drum_tracks`` (gap_bars=1).
"""

from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from musicvae.pattern import NUM_CLASSES, PITCH_TO_CLASS, STEPS_PER_BAR, STEPS_PER_QUARTER, DrumPattern

DRUM_CHANNEL = 9  # MIDI channel 10, zero-based


class InputError(ValueError):
    """A file the loader cannot use; the message is one sentence for a musician."""


@dataclass
class NoteOn:
    tick: int
    channel: int
    pitch: int
    velocity: int


@dataclass
class ParsedMidi:
    """What a standard MIDI file holds that matters for drums."""

    ppq: int
    notes: list[NoteOn]
    time_signatures: list[tuple[int, int, int]]  # (tick, numerator, denominator)
    tempos: list[tuple[int, float]]  # (tick, qpm)
    num_tracks: int = 1

    @property
    def first_qpm(self) -> float:
        return self.tempos[0][1] if self.tempos else 120.0


@dataclass
class Section:
    """A stretch of constant meter; ``hits`` maps a step (from the section start) to classes."""

    numerator: int
    denominator: int
    start_tick: int
    end_tick: int | None
    hits: dict[int, set[int]] = field(default_factory=dict)
    velocities: dict[tuple[int, int], int] = field(default_factory=dict)

    @property
    def steps_per_bar(self) -> float:
        return STEPS_PER_QUARTER * self.numerator * 4 / self.denominator

    @property
    def is_four_four(self) -> bool:
        return self.steps_per_bar == STEPS_PER_BAR


def parse_midi(data: bytes) -> ParsedMidi:
    """Parse a standard MIDI file; raise InputError with a one-sentence reason."""
    import mido

    if not data:
        raise InputError("The file is empty.")
    if data[:4] != b"MThd":
        raise InputError("This is not a MIDI file (it does not start with 'MThd').")
    try:
        midi = mido.MidiFile(file=io.BytesIO(data), clip=True)
    except Exception as error:  # mido raises many types on broken files
        raise InputError(f"The MIDI file is damaged and cannot be read ({error}).") from None
    if not midi.ticks_per_beat or midi.ticks_per_beat <= 0:
        raise InputError("The MIDI file has no valid time division (ticks per beat).")
    notes: list[NoteOn] = []
    signatures: list[tuple[int, int, int]] = []
    tempos: list[tuple[int, float]] = []
    for track in midi.tracks:
        tick = 0
        for message in track:
            tick += message.time
            if message.type == "note_on" and message.velocity > 0:
                notes.append(NoteOn(tick, message.channel, message.note, message.velocity))
            elif message.type == "time_signature":
                signatures.append((tick, message.numerator, message.denominator))
            elif message.type == "set_tempo" and message.tempo > 0:
                tempos.append((tick, 60e6 / message.tempo))
    notes.sort(key=lambda n: (n.tick, n.pitch))
    signatures.sort()
    tempos.sort()
    return ParsedMidi(midi.ticks_per_beat, notes, signatures, tempos, len(midi.tracks))


def split_sections(parsed: ParsedMidi, drum_channels: set[int] | None = None) -> list[Section]:
    """Cut at time-signature changes and quantize drum notes per section (in beats)."""
    drum_channels = {DRUM_CHANNEL} if drum_channels is None else drum_channels
    changes: list[tuple[int, int, int]] = []
    for tick, num, den in parsed.time_signatures:
        if changes and changes[-1][0] == tick:
            changes[-1] = (tick, num, den)  # the last event at a tick wins
        elif not changes or changes[-1][1:] != (num, den):
            changes.append((tick, num, den))
    if not changes or changes[0][0] > 0:
        changes.insert(0, (0, 4, 4))  # no signature: 4/4 is assumed
    sections = [
        Section(num, den, tick, changes[i + 1][0] if i + 1 < len(changes) else None)
        for i, (tick, num, den) in enumerate(changes)
    ]
    index = 0
    for note in parsed.notes:
        if note.channel not in drum_channels or note.pitch not in PITCH_TO_CLASS:
            continue
        while sections[index].end_tick is not None and note.tick >= sections[index].end_tick:
            index += 1
        section = sections[index]
        step = int(np.floor((note.tick - section.start_tick) * STEPS_PER_QUARTER / parsed.ppq + 0.5))
        cls = PITCH_TO_CLASS[note.pitch]
        section.hits.setdefault(step, set()).add(cls)
        key = (step, cls)
        section.velocities[key] = max(section.velocities.get(key, 0), note.velocity)
    return sections


def extract_tracks(section: Section, gap_bars: int = 1, max_bars: int = 100) -> list[tuple[int, DrumPattern]]:
    """Split a 4/4 section's hits into tracks at empty bars (Magenta's gap rule).

    A track starts at the bar holding its first hit and ends when the next hit lies at least
    ``gap_bars`` bars after the step following the previous hit; it is padded to a whole bar
    and truncated to ``max_bars``.  Returns (start_bar, pattern) pairs.
    """
    steps = sorted(section.hits)
    tracks: list[tuple[int, DrumPattern]] = []
    i = 0
    while i < len(steps):
        start = steps[i] - steps[i] % STEPS_PER_BAR
        j = i
        while j + 1 < len(steps) and steps[j + 1] - (steps[j] + 1) < gap_bars * STEPS_PER_BAR:
            j += 1
        last = steps[j]
        num_bars = min(last // STEPS_PER_BAR - start // STEPS_PER_BAR + 1, max_bars)
        hits = np.zeros((num_bars * STEPS_PER_BAR, NUM_CLASSES), dtype=bool)
        vel = np.zeros_like(hits, dtype=np.uint8)
        for step in steps[i : j + 1]:
            offset = step - start
            if offset >= hits.shape[0]:
                break
            for cls in section.hits[step]:
                hits[offset, cls] = True
                vel[offset, cls] = section.velocities[(step, cls)]
        tracks.append((start // STEPS_PER_BAR, DrumPattern(hits, vel)))
        i = j + 1
    return tracks


def slice_windows(track: DrumPattern, num_bars: int = 4, hop_bars: int = 1) -> list[tuple[int, DrumPattern]]:
    """(bar offset, window) for every whole ``num_bars`` window with a ``hop_bars`` hop."""
    total = int(track.num_steps // STEPS_PER_BAR)
    return [(b, track.window(b, num_bars)) for b in range(0, total - num_bars + 1, hop_bars)]


def file_windows(data: bytes, num_bars: int = 4, gap_bars: int = 1, max_bars: int = 100) -> list[tuple[int, DrumPattern]]:
    """All unique 4-bar windows of a file, in order, with their absolute start bar."""
    parsed = parse_midi(data)
    seen: set[bytes] = set()
    windows: list[tuple[int, DrumPattern]] = []
    for section in split_sections(parsed):
        if not section.is_four_four:
            continue
        section_bar = _section_start_bar(parsed, section)
        for track_bar, track in extract_tracks(section, gap_bars, max_bars):
            for offset, window in slice_windows(track, num_bars):
                key = window.to_tokens().astype(np.uint16).tobytes()
                if key in seen:
                    continue
                seen.add(key)
                window.qpm = parsed.first_qpm
                windows.append((section_bar + track_bar + offset, window))
    return windows


def _section_start_bar(parsed: ParsedMidi, section: Section) -> int:
    """Bar number of a section start, counting 16-step bars from the file start (for provenance)."""
    return int(section.start_tick * STEPS_PER_QUARTER / parsed.ppq // STEPS_PER_BAR)


def count_by_channel(parsed: ParsedMidi) -> dict[int, int]:
    counts: dict[int, int] = defaultdict(int)
    for note in parsed.notes:
        counts[note.channel] += 1
    return dict(counts)
