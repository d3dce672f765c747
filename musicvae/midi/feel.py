"""How the drums sat on the grid before quantizing: a triplet feel or humanised timing, one notice each.

The model's grid is 16 steps a bar, so quantizing moves triplets and microtiming onto 16ths; the
musician is told, once, which of the two happened (a triplet feel includes off-grid timing).
"""

from __future__ import annotations

import numpy as np

from musicvae.midi.parse import _CLASS_OF_PITCH, ParsedMidi, Section

TRIPLET_NOTICE = ("This groove has a triplet feel; the model's grid is 16ths, so triplets were moved to the "
                  "nearest 16th.")
COMPOUND_NOTICE = ("The groove is in 12/8, a triplet feel: each dotted quarter was read as a beat of 4/4, and its "
                   "triplets were moved to the nearest 16th (the model's grid).")
MICROTIMING_NOTICE = "The groove's microtiming was snapped to the 16th grid (its notes were played off the grid)."
MIN_PPQ = 24  # coarser files cannot tell a triplet from a rounded 16th
MIN_NOTES = 8


def feel_notices(parsed: ParsedMidi, sections: list[Section], drums: set[int]) -> list[str]:
    """The 12/8, triplet or microtiming notice for the drum notes of the 4/4 sections ([] when on the grid)."""
    compound = [COMPOUND_NOTICE] if any(s.compound and s.num_hits for s in sections) else []
    ppq = parsed.ppq
    keep = (_CLASS_OF_PITCH[parsed.pitches] >= 0) & np.isin(parsed.channels, sorted(drums))
    ticks = parsed.ticks[keep]
    if ppq < MIN_PPQ or not sections or ticks.size < MIN_NOTES:
        return compound
    starts = np.array([s.start_tick for s in sections], dtype=np.int64)
    index = np.clip(np.searchsorted(8 * starts, 8 * ticks + ppq, side="right") - 1, 0, len(sections) - 1)
    four_four = np.array([s.is_four_four and not s.compound for s in sections])[index]
    relative = (ticks - starts[index])[four_four]
    if relative.size < MIN_NOTES:
        return compound
    beat = (relative % ppq) / ppq  # where in its beat each note falls, 0..1
    off = np.abs(beat * 4 - np.rint(beat * 4))  # in 16ths from the nearest 16th: 0..0.5
    from_sixth = np.abs(beat * 6 - np.rint(beat * 6)) * 4 / 6  # in 16ths from the nearest 1/6 beat
    triplets = (off > 0.2) & (from_sixth < 0.1)  # on an 8th or 16th triplet, not on a 16th
    if triplets.sum() >= 4 and triplets.mean() >= 0.15:
        return [*compound, TRIPLET_NOTICE]
    if (off > 0.1).mean() >= 0.25:
        return [*compound, MICROTIMING_NOTICE]
    return compound
