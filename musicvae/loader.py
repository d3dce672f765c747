"""Untrusted MIDI in: bytes + a name -> usable 4-bar grooves and what was changed, or one reason.

The one loader behind the app's uploads, ``musicvae inspect`` and ``generate --input_midi_*``.
It never raises anything but :class:`InputError` for a bad file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from musicvae.midi_io import InputError, extract_tracks, parse_midi, slice_windows, split_sections
from musicvae.pattern import STEPS_PER_BAR, DrumPattern

WINDOW_BARS = 4
MAX_FILE_BYTES = 8 * 1024 * 1024


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


def load_grooves(data: bytes, name: str = "upload") -> LoadedGrooves:
    if len(data) > MAX_FILE_BYTES:
        raise InputError(f"The file is {len(data) / 2**20:.1f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB.")
    parsed = parse_midi(data)
    if not parsed.notes:
        raise InputError("The file has no notes.")
    sections = split_sections(parsed)
    drum_notes = sum(len(s) for sec in sections for s in sec.hits.values())
    if drum_notes == 0:
        raise InputError("No drum notes: the file has no notes on the drum channel (10) at known drum pitches.")
    notices: list[str] = []
    windows: list[DrumPattern] = []
    meters = sorted({f"{s.numerator}/{s.denominator}" for s in sections if s.hits})
    for section in sections:
        if not section.is_four_four or not section.hits:
            continue
        for track_bar, track in extract_tracks(section):
            track.qpm = parsed.first_qpm
            if track.num_steps < WINDOW_BARS * STEPS_PER_BAR:
                track = _complete_to_window(track, notices)
            for offset, window in slice_windows(track, WINDOW_BARS):
                start = track_bar + offset
                window.source = f"{name} bars {start + 1}-{start + WINDOW_BARS}"
                windows.append(window)
    if not windows:
        raise InputError(f"No 4/4 drum part found (meters in the file: {', '.join(meters) or 'none'}).")
    if len(parsed.tempos) > 1:
        notices.append("Tempo changes ignored: the grooves are quantized in beats.")
    summary = {
        "qpm": round(parsed.first_qpm, 2),
        "meters": meters,
        "tracks": parsed.num_tracks,
        "drum_notes": drum_notes,
        "windows": len(windows),
    }
    return LoadedGrooves(windows, notices, summary)


def _complete_to_window(track: DrumPattern, notices: list[str]) -> DrumPattern:
    """Repeat a 1-3 bar phrase until it fills 4 bars (a 3-bar phrase gets its first bar again)."""
    bars = track.num_steps // STEPS_PER_BAR
    reps = -(-WINDOW_BARS // bars)
    hits = np.tile(track.hits, (reps, 1))[: WINDOW_BARS * STEPS_PER_BAR]
    vel = None if track.velocities is None else np.tile(track.velocities, (reps, 1))[: WINDOW_BARS * STEPS_PER_BAR]
    notices.append(f"{bars}-bar phrase repeated to fill 4 bars.")
    return DrumPattern(hits, vel, track.qpm)
