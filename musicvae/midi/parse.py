"""MIDI in: bytes -> drum hits on the 16th-note grid, quantized in beats (ticks).

One reader serves ``musicvae prepare``, ``musicvae inspect``, ``generate`` and the app.
Quantizing ticks instead of seconds means tempo changes never break the grid (spec §1.1
pitfall): a step is ``round(tick * 4 / ppq)``.  Sections with another meter than 16 steps per
bar (4/4, 2/2, 8/8) are set aside, and tracks are split at empty bars like Magenta's
``extract_drum_tracks`` (gap_bars=1).  The bytes are read by our own forgiving reader
(:mod:`musicvae.midi.smf`); this module turns its file ticks into beats and meters into sections.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from musicvae.midi.smf import InputError, InternalError, Smf, read_smf
from musicvae.pattern import NUM_CLASSES, PITCH_TO_CLASS, STEPS_PER_BAR, STEPS_PER_QUARTER, DrumPattern

__all__ = ["InputError", "InternalError", "ParsedMidi", "parse_midi", "split_sections", "extract_tracks",
           "slice_windows", "file_windows"]

DRUM_CHANNEL = 9  # MIDI channel 10, zero-based
MAX_BARS = 4096  # bars of 4/4 read from one file (2.3 hours at 120 qpm); later notes are counted, not kept
SMPTE_PPQ = 960  # ticks per beat given to files that count time in SMPTE frames
_CLASS_OF_PITCH = np.full(256, -1, dtype=np.int64)  # pitch -> drum class, -1 outside the map
for _pitch, _cls in PITCH_TO_CLASS.items():
    _CLASS_OF_PITCH[_pitch] = _cls


@dataclass(eq=False)  # numpy fields: compare by identity
class ParsedMidi:
    """What a standard MIDI file holds that matters for drums, time in ticks of ``ppq`` per beat.

    Notes live in parallel numpy arrays sorted by (tick, pitch) so that a long file costs a few
    bytes per note.
    """

    ppq: int
    ticks: np.ndarray  # int64
    channels: np.ndarray  # uint8, 0-based
    pitches: np.ndarray  # uint8
    velocities: np.ndarray  # uint8, 1..127
    time_signatures: list[tuple[int, int, int]]  # (tick, numerator, denominator), valid ones only
    tempos: list[tuple[int, float]]  # (tick, qpm), tempo 0 left out
    num_tracks: int = 1
    format: int = 1
    tracks: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # 1-based track of each note
    durations: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # ticks, -1 = no note-off
    track_names: dict[int, str] = field(default_factory=dict)
    track_end_ticks: dict[int, int] = field(default_factory=dict)
    programs: list[tuple[int, int, int]] = field(default_factory=list)  # (tick, channel, program)
    bank_msb: list[tuple[int, int, int]] = field(default_factory=list)  # (tick, channel, CC0 value)
    problems: list[str] = field(default_factory=list)  # damage and repairs, one sentence each
    changes: list[str] = field(default_factory=list)  # what reading changed (SMPTE timing, format 2, ...)
    zero_velocity_notes: int = 0
    notes_beyond_limit: int = 0
    notes_over_cap: int = 0
    ignored_meta: list[str] = field(default_factory=list)  # e.g. "time signature 0/4", "tempo 0"
    wrapper: str = ""

    @property
    def first_qpm(self) -> float:
        return self.tempos[0][1] if self.tempos else 120.0


@dataclass(eq=False)
class Section:
    """A stretch of constant meter; its drum hits as sorted unique (step, class) entries.

    ``steps`` count 16th notes from the section start; ``velocities`` is the loudest note that
    landed on each entry and ``offsets`` how far from its step that note was played (in steps,
    -0.5..0.5, positive = late).
    """

    numerator: int
    denominator: int
    start_tick: int
    end_tick: int | None
    steps: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    classes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    velocities: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))
    offsets: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    compound: bool = False  # 12/8 read as 4/4: a dotted quarter is a beat, its triplet 8ths go to the nearest 16th

    @property
    def steps_per_bar(self) -> float:
        return STEPS_PER_BAR if self.compound else STEPS_PER_QUARTER * self.numerator * 4 / self.denominator

    def bar_ticks(self, ppq: int) -> float:
        return ppq * 4 * self.numerator / self.denominator

    def to_steps(self, ticks, ppq: int):
        """Ticks from the section start -> nearest 16th step (numpy or int), exactly in integers."""
        if self.compound:  # a step is a quarter of a dotted quarter: round(ticks * 8 / (3 * ppq))
            return (16 * ticks + 3 * ppq) // (6 * ppq)
        return (8 * ticks + ppq) // (2 * ppq)  # floor(ticks * 4 / ppq + 1/2)

    def exact_steps(self, ticks: np.ndarray, ppq: int) -> np.ndarray:
        """Ticks from the section start -> 16th steps as real numbers (unrounded :meth:`to_steps`)."""
        per_step = 3 * ppq / 8 if self.compound else ppq / 4
        return np.asarray(ticks, dtype=np.float64) / per_step

    @property
    def is_four_four(self) -> bool:
        return self.steps_per_bar == STEPS_PER_BAR

    @property
    def num_hits(self) -> int:
        return int(self.steps.size)

    @property
    def hits(self) -> dict[int, set[int]]:
        """step -> drum classes (a dict view for callers that want one)."""
        out: dict[int, set[int]] = {}
        for step, cls in zip(self.steps.tolist(), self.classes.tolist()):
            out.setdefault(step, set()).add(cls)
        return out


def parse_midi(data: bytes, max_bars: int = MAX_BARS) -> ParsedMidi:
    """Parse a standard MIDI file; raise InputError with a one-sentence reason.

    Reads at most ``max_bars`` bars of 4/4 (``notes_beyond_limit`` > 0 says notes were left out).
    SMPTE-timed files get beats from their tempo map; format 2 files (independent patterns) are
    laid out one after another with an empty bar between them.
    """
    max_beats = max_bars * 4
    smf = read_smf(data, max_beats=max_beats)
    ticks = np.frombuffer(smf.note_tick, dtype=np.int64) if smf.num_notes else np.zeros(0, np.int64)
    durations = np.frombuffer(smf.note_duration, dtype=np.int64) if smf.num_notes else np.zeros(0, np.int64)
    tracks = np.frombuffer(smf.note_track, dtype=np.int32) if smf.num_notes else np.zeros(0, np.int32)
    channels = np.frombuffer(bytes(smf.note_channel), dtype=np.uint8)
    pitches = np.frombuffer(bytes(smf.note_pitch), dtype=np.uint8)
    velocities = np.frombuffer(bytes(smf.note_velocity), dtype=np.uint8)
    tempo_events = [(t, us, tr) for t, us, tr in smf.tempos if us > 0]
    sig_events = list(smf.time_signatures)
    end_ticks = {info.number: info.end_tick for info in smf.tracks}
    ignored = ["tempo 0"] * (len(tempo_events) < len(smf.tempos))
    changes: list[str] = []
    if not smf.declared_tracks and smf.tracks:
        many = len(smf.tracks) > 1
        changes.append(f"The file's header says it has 0 tracks, but {len(smf.tracks)} track{'s' * many} "
                       f"{'were' if many else 'was'} found and read.")
    if smf.format == 2 and len(smf.tracks) > 1:
        ticks, tempo_events, sig_events, end_ticks = _lay_out_patterns(smf, ticks, tracks, tempo_events, sig_events)
        changes.append(f"The file holds {len(smf.tracks)} separate patterns (format 2); they were placed one after "
                       "another with an empty bar between them.")
    ppq = smf.ppq
    if not ppq:  # SMPTE: absolute time; turn seconds into beats with the file's own tempo map
        ppq = SMPTE_PPQ
        to_beats = _smpte_converter(smf.ticks_per_second, tempo_events)
        ends = to_beats(ticks + np.maximum(durations, 0))
        ticks = to_beats(ticks)
        durations = np.where(durations >= 0, ends - ticks, -1)
        tempo_events = [(int(to_beats(np.array([t]))[0]), us, tr) for t, us, tr in tempo_events]
        sig_events = [(int(to_beats(np.array([t]))[0]), n, d, tr) for t, n, d, tr in sig_events]
        end_ticks = {k: int(to_beats(np.array([v]))[0]) for k, v in end_ticks.items()}
        qpm = 60e6 / min(tempo_events)[1] if tempo_events else 120.0
        changes.append(f"The file counts time in SMPTE frames; beats were derived from its tempo ({qpm:.0f} qpm).")
    beyond = smf.notes_beyond_limit
    if ticks.size and ticks.max() >= max_beats * ppq:  # SMPTE files were read with a looser bound
        keep = ticks < max_beats * ppq
        beyond += int((~keep).sum())
        ticks, durations, tracks = ticks[keep], durations[keep], tracks[keep]
        channels, pitches, velocities = channels[keep], pitches[keep], velocities[keep]
    order = np.lexsort((pitches, ticks))
    signatures = []
    for tick, num, exponent, _ in sorted(sig_events, key=lambda s: s[0]):
        if num >= 1 and exponent <= 6:  # x/1 .. x/64; 0/x and x/128 or finer cannot be a bar
            signatures.append((tick, num, 2**exponent))
        else:
            den = str(2**exponent) if exponent < 16 else f"2^{exponent}"
            ignored.append(f"time signature {num}/{den}")
    tempos = sorted((t, 60e6 / us) for t, us, _ in tempo_events)
    return ParsedMidi(
        ppq=ppq, ticks=ticks[order], channels=channels[order], pitches=pitches[order],
        velocities=velocities[order], time_signatures=signatures, tempos=tempos,
        num_tracks=len(smf.tracks), format=smf.format, tracks=tracks[order], durations=durations[order],
        track_names={info.number: info.name for info in smf.tracks if info.name}, track_end_ticks=end_ticks,
        programs=sorted(smf.programs), bank_msb=sorted(smf.bank_msb), problems=_problems(smf), changes=changes,
        zero_velocity_notes=smf.zero_velocity_notes, notes_beyond_limit=beyond, notes_over_cap=smf.notes_over_cap,
        ignored_meta=ignored, wrapper=smf.wrapper,
    )


def _problems(smf: Smf) -> list[str]:
    """Damage sentences from the reader, plus one per kind of illegal byte it repaired."""
    problems = list(dict.fromkeys(smf.problems))  # a damaged file can repeat one message per track
    if len(problems) > 4:
        problems = problems[:3] + [f"{len(problems) - 3} more problems of this kind were found and worked around."]
    if smf.clipped_bytes:
        problems.append(f"{smf.clipped_bytes} out-of-range value{'s' * (smf.clipped_bytes > 1)} (above 127) "
                        "clipped to 127.")
    if smf.skipped_bytes:
        problems.append(f"{smf.skipped_bytes} byte{'s' * (smf.skipped_bytes > 1)} not valid in a MIDI file "
                        f"{'were' if smf.skipped_bytes > 1 else 'was'} skipped.")
    if smf.running_status_breaks:
        problems.append("Some events lacked a status byte after a meta or sysex event; the previous one was reused.")
    return problems


def _lay_out_patterns(smf: Smf, ticks: np.ndarray, tracks: np.ndarray, tempos: list, signatures: list):
    """Format 2: every track starts at 0 on its own; shift each after the previous one (bar-aligned)."""
    bar = 4 * smf.ppq if smf.ppq else int(2 * smf.ticks_per_second)  # a 4/4 bar (at 120 qpm for SMPTE)
    last_note = np.zeros(len(smf.tracks) + 2, dtype=np.int64)
    np.maximum.at(last_note, tracks, ticks + 1)
    offsets: dict[int, int] = {}
    offset = 0
    for info in smf.tracks:
        offsets[info.number] = offset
        length = max(info.end_tick, int(last_note[info.number]))
        offset += (-(-length // bar) + 1) * bar  # whole bars, then one empty bar so tracks never merge
    shift = np.zeros(len(smf.tracks) + 2, dtype=np.int64)
    for number, value in offsets.items():
        shift[number] = value
    tempos = [(t + offsets.get(tr, 0), us, tr) for t, us, tr in tempos]
    starts_with_meter = {tr for t, _, _, tr in signatures if t == 0}
    signatures = [(t + offsets.get(tr, 0), n, d, tr) for t, n, d, tr in signatures]
    # each pattern is in 4/4 unless it says otherwise, whatever the pattern before it was in
    signatures += [(offsets[n], 4, 2, n) for n in offsets if n not in starts_with_meter]
    end_ticks = {info.number: info.end_tick + offsets[info.number] for info in smf.tracks}
    return ticks + shift[tracks], tempos, signatures, end_ticks


def _smpte_converter(ticks_per_second: float, tempos: list[tuple[int, int, int]]):
    """A function from SMPTE ticks (numpy) to beat ticks at SMPTE_PPQ, following the tempo map."""
    changes = sorted((t, us) for t, us, _ in tempos)
    if not changes or changes[0][0] > 0:
        changes.insert(0, (0, changes[0][1] if changes else 500_000))
    at = np.array([t for t, _ in changes], dtype=np.float64)
    beats_per_tick = np.array([1e6 / us / ticks_per_second for _, us in changes])
    beats_at = np.concatenate([[0.0], np.cumsum(np.diff(at) * beats_per_tick[:-1])])

    def convert(values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        index = np.searchsorted(at, values, side="right") - 1
        beats = beats_at[index] + (values - at[index]) * beats_per_tick[index]
        return np.rint(beats * SMPTE_PPQ).astype(np.int64)

    return convert


def split_sections(parsed: ParsedMidi, drum_channels: set[int] | None = None, compound: bool = False) -> list[Section]:
    """Cut at time-signature changes and quantize drum notes per section (in beats).

    ``compound``: 12/8 sections are read as 4/4 with a triplet feel (4 dotted-quarter beats a bar);
    ``prepare`` leaves them out like every other meter, the loader of user files reads them."""
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
        Section(num, den, tick, changes[i + 1][0] if i + 1 < len(changes) else None,
                compound=compound and (num, den) == (12, 8))
        for i, (tick, num, den) in enumerate(changes)
    ]
    classes = _CLASS_OF_PITCH[parsed.pitches]
    keep = (classes >= 0) & np.isin(parsed.channels, np.array(sorted(drum_channels), dtype=np.uint8))
    ticks, classes, velocities = parsed.ticks[keep], classes[keep], parsed.velocities[keep]
    ppq = parsed.ppq
    starts = np.array([s.start_tick for s in sections], dtype=np.int64)
    # A note within half a step before a meter change rounds onto the new section's first step
    # (a drummer who plays beat 1 a little early), hence ``8 * tick + ppq`` against ``8 * start``.
    index = np.searchsorted(8 * starts, 8 * ticks + ppq, side="right") - 1
    relative = ticks - starts[index]
    for number, section in enumerate(sections):
        mine = index == number
        if not mine.any():
            continue
        steps = section.to_steps(relative[mine], ppq)
        offsets = (section.exact_steps(relative[mine], ppq) - steps).astype(np.float32)
        key = steps * NUM_CLASSES + classes[mine]
        vel = velocities[mine]
        order = np.lexsort((vel, key))  # the loudest note of each (step, class) comes last
        key, vel, offsets = key[order], vel[order], offsets[order]
        last = np.append(key[1:] != key[:-1], True)
        key, vel, offsets = key[last], vel[last], offsets[last]
        section.steps, section.classes, section.velocities = key // NUM_CLASSES, key % NUM_CLASSES, vel
        section.offsets = np.clip(offsets, -0.5, 0.5)
    return sections


def extract_tracks(section: Section, gap_bars: int = 1, max_bars: int = 100) -> list[tuple[int, DrumPattern]]:
    """Split a 4/4 section's hits into tracks at empty bars (Magenta's gap rule).

    A track starts at the bar holding its first hit and ends when the next hit lies at least
    ``gap_bars`` bars after the step following the previous hit; it is padded to a whole bar
    and truncated to ``max_bars``.  Returns (start_bar, pattern) pairs.
    """
    if not section.steps.size:
        return []
    unique = np.unique(section.steps)
    breaks = np.nonzero(unique[1:] - (unique[:-1] + 1) >= gap_bars * STEPS_PER_BAR)[0]
    firsts = np.concatenate([[0], breaks + 1])
    lasts = np.concatenate([breaks, [unique.size - 1]])
    tracks: list[tuple[int, DrumPattern]] = []
    for first, last in zip(unique[firsts].tolist(), unique[lasts].tolist()):
        start = first - first % STEPS_PER_BAR
        num_bars = min(last // STEPS_PER_BAR - start // STEPS_PER_BAR + 1, max_bars)
        end = min(last + 1, start + num_bars * STEPS_PER_BAR)
        lo, hi = np.searchsorted(section.steps, [first, end])  # entries of this track (steps are sorted)
        hits = np.zeros((num_bars * STEPS_PER_BAR, NUM_CLASSES), dtype=bool)
        vel = np.zeros_like(hits, dtype=np.uint8)
        off = np.zeros(hits.shape, dtype=np.float32)
        rows, cols = section.steps[lo:hi] - start, section.classes[lo:hi]
        hits[rows, cols] = True
        vel[rows, cols] = section.velocities[lo:hi]
        off[rows, cols] = section.offsets[lo:hi]
        tracks.append((start // STEPS_PER_BAR, DrumPattern(hits, vel, offsets=off)))
    return tracks


def slice_windows(track: DrumPattern, num_bars: int = 4, hop_bars: int = 1) -> list[tuple[int, DrumPattern]]:
    """(bar offset, window) for every whole ``num_bars`` window with a ``hop_bars`` hop."""
    total = int(track.num_steps // STEPS_PER_BAR)
    return [(b, track.window(b, num_bars)) for b in range(0, total - num_bars + 1, hop_bars)]


def file_windows(
    data: bytes, num_bars: int = 4, gap_bars: int = 1, max_bars: int = 100
) -> list[tuple[int, DrumPattern]]:
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
