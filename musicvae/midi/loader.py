"""Untrusted MIDI in: bytes + a name -> usable 4-bar grooves and what was changed, or one reason.

The one loader behind the app's uploads, ``musicvae inspect`` and ``generate --input_midi_*``.
Whatever the bytes, :func:`load_grooves` returns windows with one-sentence notices, or raises
:class:`InputError` whose message is one sentence for a musician; nothing else escapes.  A bug
of ours surfaces as :class:`InternalError` (an InputError, so still one sentence, but logged and
told apart: the robustness tests fail on it).
The 4/4 grid logic (16 steps a bar, tracks split at an empty bar) is the one ``prepare`` uses.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from musicvae.midi.channels import NoDrumsError, choose_drum_channels
from musicvae.midi.feel import feel_notices
from musicvae.midi.parse import (
    _CLASS_OF_PITCH,
    MAX_BARS,
    InputError,
    InternalError,
    ParsedMidi,
    Section,
    extract_tracks,
    parse_midi,
    slice_windows,
    split_sections,
)
from musicvae.midi.smf import MAX_NOTES
from musicvae.pattern import STEPS_PER_BAR, DrumPattern

__all__ = ["InputError", "InternalError", "NoDrumsError", "LoadedGrooves", "load_grooves", "read_midi"]
log = logging.getLogger(__name__)

WINDOW_BARS = 4
WINDOW_STEPS = WINDOW_BARS * STEPS_PER_BAR
MAX_FILE_BYTES = 8 * 1024 * 1024  # the app's upload cap (.streamlit/config.toml) is checked here too
MIN_QPM, MAX_QPM = 20.0, 320.0  # playback tempo range; GMD spans 50-290


@dataclass
class LoadedGrooves:
    windows: list[DrumPattern]  # 4-bar windows in file order; .source says where each comes from
    notices: list[str] = field(default_factory=list)  # what the loader changed, one sentence each
    summary: dict = field(default_factory=dict)  # tempo, meter, bars, notes kept/dropped, ...

    @property
    def default_index(self) -> int:
        """The first window with the most hits."""
        counts = [w.num_hits for w in self.windows]
        return int(np.argmax(counts)) if counts else 0


def load_grooves(data: bytes, name: str = "upload", drum_channel: int | None = None) -> LoadedGrooves:
    """Grooves from any bytes, or InputError with one sentence (never another exception).

    ``drum_channel`` (1-16) reads that channel, and only that one, as the drum part; without it the
    drums are channel 10, else a channel whose notes look like a kit.  When no drum part is found the
    error is a :class:`NoDrumsError` whose ``channels`` a front end can offer as "treat channel N as drums".
    :class:`InternalError` (a subclass) means a bug of ours, not a bad file; it is logged with its
    traceback and carries the original exception as ``__cause__``."""
    if drum_channel is not None and not (isinstance(drum_channel, int) and 1 <= drum_channel <= 16):
        raise InputError(f"The drum channel must be a number from 1 to 16, not {drum_channel!r}.")
    with _one_sentence(name):
        return _load(bytes(data), name or "upload", drum_channel)


def read_midi(data: bytes, name: str = "file") -> ParsedMidi:
    """Every note of any bytes (``musicvae render``), read like :func:`load_grooves` reads them:
    the same size limit, the same repairs, the same one-sentence InputError."""
    with _one_sentence(name):
        data = bytes(data)
        _check_size(data)
        return parse_midi(data, MAX_BARS)


@contextmanager
def _one_sentence(name: str) -> Iterator[None]:
    """InputError passes; anything else is a bug of ours, logged and raised as InternalError."""
    try:
        yield
    except InputError:  # InternalError included: already one sentence
        raise
    except (MemoryError, RecursionError) as error:  # the loader's limits should prevent both: a bug too
        log.exception("loading %r hit %s", name, type(error).__name__)
        raise InternalError("The file is too complex to read within the loader's limits.") from error
    except Exception as error:  # a bug of ours must still reach the musician as one sentence
        log.exception("loading %r failed inside the loader", name)
        raise InternalError(f"The file could not be read (internal {type(error).__name__}); "
                            "please report it.") from error


def _check_size(data: bytes) -> None:
    if len(data) > MAX_FILE_BYTES:
        raise InputError(f"The file is {len(data) / 2**20:.1f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB "
                         "(drum MIDI files are usually under 100 kB).")


def _load(data: bytes, name: str, drum_channel: int | None = None) -> LoadedGrooves:
    _check_size(data)
    parsed = parse_midi(data, MAX_BARS)
    notices = _reading_notices(parsed)
    if not parsed.ticks.size:
        raise InputError(_no_notes_reason(parsed))
    drums, channel_notices = choose_drum_channels(parsed, drum_channel)
    notices += channel_notices
    sections = split_sections(parsed, drums, compound=True)
    notices += feel_notices(parsed, sections, drums)
    on_drums = np.isin(parsed.channels, sorted(drums))
    drum_tracks = np.unique(parsed.tracks[on_drums]).tolist()
    end_tick = max([parsed.track_end_ticks.get(t, 0) for t in drum_tracks] + [int(parsed.ticks[on_drums].max())])
    windows, bars, meters = _windows(parsed, sections, name, notices, end_tick)
    qpms = [w.qpm for w in windows]
    if max(qpms) > MAX_QPM or min(qpms) < MIN_QPM:
        written = [q for _, q in parsed.tempos if not MIN_QPM <= q <= MAX_QPM] or [q for q in qpms
                                                                                 if not MIN_QPM <= q <= MAX_QPM]
        notices.append(f"The file's tempo ({written[0]:.0f} qpm) is out of range; "
                       f"{min(max(written[0], MIN_QPM), MAX_QPM):.0f} qpm is used for playback.")
        for window in windows:
            window.qpm = float(np.clip(window.qpm, MIN_QPM, MAX_QPM))
    if len({round(q, 2) for _, q in parsed.tempos}) > 1:
        notices.append("Tempo changes ignored: the grooves are quantized in beats "
                       "(each window plays at the tempo where it starts).")
    loaded = LoadedGrooves(windows, [n for n in dict.fromkeys(notices) if n])
    mapped = _CLASS_OF_PITCH[parsed.pitches] >= 0
    loaded.summary = {
        "qpm": round(windows[loaded.default_index].qpm, 2),
        "meters": meters,
        "tracks": parsed.num_tracks,
        "format": parsed.format,
        "drum_channels": [c + 1 for c in sorted(drums)],
        "channels": sorted(c + 1 for c in np.unique(parsed.channels).tolist()),
        "drum_notes": int((mapped & on_drums).sum()),
        "notes_dropped": int((~mapped & on_drums).sum()),
        "bars": bars,
        "windows": len(windows),
        "default_window": loaded.default_index,
        "default_source": windows[loaded.default_index].source,
    }
    return loaded


# ---------------------------------------------------------------------------------------------
# what reading found


def _reading_notices(parsed: ParsedMidi) -> list[str]:
    notices: list[str] = []
    if parsed.wrapper == "RIFF":
        notices.append("The MIDI data was unwrapped from a RIFF (.rmi) file.")
    elif parsed.wrapper:
        notices.append(f"{parsed.wrapper.capitalize()} were skipped.")
    for problem in parsed.problems:  # a cut file still gives what came before the cut
        notices.append(problem[:-1] + "; the notes before the cut were used." if "truncated" in problem else problem)
    notices += parsed.changes
    for what in dict.fromkeys(parsed.ignored_meta):
        notices.append(f"An impossible {what} was ignored.")
    if parsed.notes_beyond_limit:
        notices.append(f"The file is longer than {MAX_BARS} bars; only the first {MAX_BARS} were read "
                       "(a limit that keeps long files fast).")
    if parsed.notes_over_cap:
        notices.append(f"The file has more than {MAX_NOTES:,} notes; only the first {MAX_NOTES:,} were read.")
    return notices


def _no_notes_reason(parsed: ParsedMidi) -> str:
    truncated = [p for p in parsed.problems if "truncated" in p]
    if truncated:
        return truncated[0]
    if parsed.zero_velocity_notes:
        return "The file's notes all have velocity 0, so they are silent: there is nothing to play."
    if parsed.notes_beyond_limit:
        return f"The file's first {MAX_BARS} bars hold no notes (later ones are beyond the loader's limit)."
    if parsed.problems:
        return "The file has no readable notes: " + parsed.problems[0][0].lower() + parsed.problems[0][1:]
    return "The file has no notes."


# ---------------------------------------------------------------------------------------------
# windows


def _windows(parsed: ParsedMidi, sections: list[Section], name: str, notices: list[str], end_tick: int):
    """4-bar windows of the 4/4 sections (short passages completed), bars used, meters with drums."""
    ppq = parsed.ppq
    tempo_ticks = np.array([t for t, _ in parsed.tempos], dtype=np.int64)
    tempo_qpm = [q for _, q in parsed.tempos] or [120.0]
    first_bar = _bar_numbers(parsed, sections)
    skipped_meters: dict[str, list[tuple[int, int]]] = {}
    found: list[tuple[int, int, DrumPattern, Section]] = []  # (file bar, bar in section, track, section)
    for number, section in enumerate(sections):
        if not section.num_hits:
            continue
        if not section.is_four_four:
            meter = f"{section.numerator}/{section.denominator}"
            if first_bar[number] < 0:
                notices.append(f"The pickup before bar 1 (in {meter}) was left out.")
            else:
                last = first_bar[number] + int(section.steps.max() // section.steps_per_bar)
                skipped_meters.setdefault(meter, []).append((first_bar[number] + 1, last + 1))
            continue
        for track_bar, track in extract_tracks(section, 1, MAX_BARS):
            found.append((first_bar[number] + track_bar, track_bar, track, section))
    meters = sorted({f"{s.numerator}/{s.denominator}" for s in sections if s.num_hits}) or ["4/4"]
    if not found:
        where = " and ".join(f"{m} ({_bar_ranges(r)})" for m, r in skipped_meters.items())
        raise InputError(f"No 4/4 drum part: the drums are in {where}; the model plays 4/4 grooves only.")
    for meter, ranges in skipped_meters.items():
        notices.append(f"{_bar_ranges(ranges).capitalize()} (in {meter}) left out: the model plays 4/4 only.")
    long = [item for item in found if item[2].num_steps >= WINDOW_STEPS]
    if long and len(long) < len(found):
        short = [(bar + 1, bar + t.num_steps // STEPS_PER_BAR) for bar, _, t, _ in found if t.num_steps < WINDOW_STEPS]
        many = len(short) > 1
        notices.append(f"{len(short)} passage{'s' * many} shorter than 4 bars ({_bar_ranges(short)}) "
                       f"{'were' if many else 'was'} left out.")
    windows: list[DrumPattern] = []
    bars = 0
    for bar, track_bar, track, section in long or found:
        bars += track.num_steps // STEPS_PER_BAR
        if long:
            pieces = [(offset, window, f"bars {bar + offset + 1}-{bar + offset + WINDOW_BARS}")
                      for offset, window in slice_windows(track, WINDOW_BARS)]
        else:
            end_step = None
            if section.end_tick is None or end_tick <= section.end_tick:  # the file ends in this section
                end_step = section.to_steps(end_tick - section.start_tick, ppq) - track_bar * STEPS_PER_BAR
            pieces = [(0, *_complete(track, bar, end_step, notices))]
        for offset, window, label in pieces:
            tick = section.start_tick + int((track_bar + offset) * section.bar_ticks(ppq))  # where the window starts
            at = int(np.searchsorted(tempo_ticks, tick, side="right")) - 1
            window.qpm = float(tempo_qpm[max(at, 0)]) / (1.5 if section.compound else 1.0)  # beats: dotted quarters
            window.source = f"{name} {label}"
            windows.append(window)
    return windows, bars, meters


def _complete(track: DrumPattern, bar: int, end_step: int | None, notices: list[str]) -> tuple[DrumPattern, str]:
    """Complete a 1-3 bar passage to 4 bars, saying how; ``end_step`` is where the file ends."""
    hits, vel, off = track.hits.copy(), track.velocity_grid().copy(), track.offset_grid().copy()
    bars = hits.shape[0] // STEPS_PER_BAR
    if bars >= 2 and not hits[: STEPS_PER_BAR // 2].any():  # bar 1 only has notes from beat 3 on: a pickup
        notices.append(f"Bar {bar + 1} is a pickup into the groove and was left out.")
        hits, vel, off, bars, bar = hits[STEPS_PER_BAR:], vel[STEPS_PER_BAR:], off[STEPS_PER_BAR:], bars - 1, bar + 1
        end_step = None if end_step is None else end_step - STEPS_PER_BAR
    last = (bars - 1) * STEPS_PER_BAR
    cut = None if end_step is None else end_step - last  # steps of the last bar before the file ends
    if cut is not None and 0 < cut <= 12 and cut % 4 == 0 and bars >= 2:
        source = slice(last - STEPS_PER_BAR + cut, last)  # the same beats of the bar before
        hits[last + cut :], vel[last + cut :], off[last + cut :] = hits[source], vel[source], off[source]
        notices.append(f"The file ends at beat {cut // 4 + 1} of bar {bar + bars}; the rest of that bar "
                       f"was copied from bar {bar + bars - 1}.")
    elif cut in (4, 8) and bars == 1:
        hits, vel, off = (np.tile(grid[:cut], (STEPS_PER_BAR // cut, 1)) for grid in (hits, vel, off))
        notices.append(f"The file is only {cut // 4} beat{'s' * (cut > 4)} long; it was repeated to fill a bar.")
    label = f"bar {bar + 1}" if bars == 1 else f"bars {bar + 1}-{bar + bars}"
    if bars == 3:
        order = [0, 1, 1, 2]
        notices.append("The 3-bar phrase was completed to 4 bars by playing bar 2 twice (the last bar stays last).")
    else:
        order = [b % bars for b in range(WINDOW_BARS)]
        notices.append(f"The {bars}-bar loop was repeated to fill 4 bars." if bars < WINDOW_BARS else "")
    rows = np.concatenate([np.arange(b * STEPS_PER_BAR, (b + 1) * STEPS_PER_BAR) for b in order])
    return DrumPattern(hits[rows], vel[rows], offsets=off[rows]), f"{label} (completed to 4 bars)"


def _bar_numbers(parsed: ParsedMidi, sections: list[Section]) -> list[int]:
    """0-based number of each section's first bar, counting bars in each meter; -1 for a pickup."""
    numbers, bar = [], 0
    for number, section in enumerate(sections):
        ticks_per_bar = parsed.ppq * 4 * section.numerator / section.denominator
        length = None if section.end_tick is None else section.end_tick - section.start_tick
        pickup = (number == 0 and length is not None and not section.is_four_four and length < 4 * parsed.ppq
                  and len(sections) > 1 and sections[1].is_four_four)
        numbers.append(-1 if pickup else bar)
        if length is not None and not pickup:
            bar += int(np.ceil(length / ticks_per_bar))
    return numbers


def _bar_ranges(ranges: list[tuple[int, int]]) -> str:
    text = [f"bar {a}" if a == b else f"bars {a}-{b}" for a, b in ranges[:3]]
    if len(ranges) > 3:
        text.append(f"{len(ranges) - 3} more")
    return ", ".join(text)
