"""Which MIDI channels hold the drums: channel 10, a drum-kit bank, a part that looks like a kit, or the user's say.

Drum parts are not always on channel 10: e-drum modules (Roland V-drums) and DAW exports often put
them on channel 1. A channel other than 10 is read as drums only when its notes look like a kit
(most on GM kit pitches 35-81, kick or snare with hats or cymbals, few distinct pitches, short
notes, drum-like density, hits together) and nothing says it is melodic (a program change to a
melodic instrument, a track name like "Piano"). Where it is doubtful the file is refused with a
reason naming the channel and how to say it is drums (``drum_channel``).
"""

from __future__ import annotations

import re

import numpy as np

from musicvae.midi.parse import _CLASS_OF_PITCH, DRUM_CHANNEL, InputError, ParsedMidi

GM_FAMILIES = (  # General MIDI program families, 8 programs each, named the way musicians say them
    "piano", "chromatic percussion", "organ", "guitar", "bass", "strings", "ensemble", "brass",
    "reed", "pipe", "synth lead", "synth pad", "synth effects", "ethnic", "percussion", "sound effects",
)
_KIT_FAMILIES = {  # the pitches a drum kit plays most, by family (22 and 26: Roland's hi-hat edges)
    "kick": {35, 36}, "snare": {37, 38, 39, 40}, "hats": {22, 26, 42, 44, 46},
    "cymbals": {49, 51, 52, 53, 55, 57, 59}, "toms": {41, 43, 45, 47, 48, 50, 58},
}
_PERCUSSIVE_PROGRAMS = range(112, 120)  # GM "percussion" family (agogo, taiko, melodic tom, synth drum, ...)
_DRUM_NAME = re.compile(r"drum|perc|\bkit\b|beat|kick|snare|hi.?hat|cymbal|batter|schlagzeug", re.IGNORECASE)
_MELODIC_NAME = re.compile(r"piano|bass|guitar|string|organ|synth|vox|vocal|lead|pad|melod", re.IGNORECASE)
SURE, DOUBTFUL, NOT_DRUMS = 2, 1, 0


class NoDrumsError(InputError):
    """No usable drum part; ``channels`` (1-based) are the channels a user may name as drums, likeliest first."""

    def __init__(self, message: str, channels: list[int]) -> None:
        super().__init__(message)
        self.channels = channels


def instrument(parsed: ParsedMidi, channel: int) -> str:
    """GM family of a channel's first program (GM's default, piano, when none is set); channel 10: drums."""
    if channel == DRUM_CHANNEL:
        return "drums"
    program = next((p for _, c, p in parsed.programs if c == channel), 0)
    return GM_FAMILIES[program // 8]


def list_channels(parsed: ParsedMidi, channels: list[int]) -> str:
    parts = [f"{instrument(parsed, c)} on channel {c + 1}" for c in channels[:4]]
    if len(channels) > 4:
        parts.append(f"{len(channels) - 4} more channels")
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def looks_like_drums(parsed: ParsedMidi, channel: int) -> int:
    """SURE: a drum part on another channel; DOUBTFUL: kit pitches, but not clearly a kit; NOT_DRUMS."""
    mine = parsed.channels == channel
    pitches, ticks, durations = parsed.pitches[mine].astype(np.int64), parsed.ticks[mine], parsed.durations[mine]
    if not pitches.size:
        return NOT_DRUMS
    names = " ".join(parsed.track_names.get(int(t), "") for t in np.unique(parsed.tracks[mine]))
    programs = {p for _, c, p in parsed.programs if c == channel}
    in_map = float((_CLASS_OF_PITCH[pitches] >= 0).mean())
    drum_name = bool(_DRUM_NAME.search(names)) and not _MELODIC_NAME.search(names)
    percussive = bool(programs) and all(p in _PERCUSSIVE_PROGRAMS for p in programs)
    if (drum_name or percussive) and in_map >= 0.8:
        return SURE
    # program 0 (piano) is what many DAWs write on every track, drums included: it proves nothing
    melodic = any(p and p not in _PERCUSSIVE_PROGRAMS for p in programs) or (
        bool(_MELODIC_NAME.search(names)) and not drum_name)
    if in_map < 0.8 or melodic:
        return NOT_DRUMS
    share = {fam: float(np.isin(pitches, sorted(p)).mean()) for fam, p in _KIT_FAMILIES.items()}
    on_kit = float(((pitches >= 35) & (pitches <= 81)).mean())
    counts = np.sort(np.bincount(pitches, minlength=128))[::-1]
    concentrated = counts[:4].sum() >= 0.6 * pitches.size and np.count_nonzero(counts) <= 24
    kit = (on_kit >= 0.75 and sum(share.values()) >= 0.6 and share["kick"] + share["snare"] > 0
           and share["hats"] + share["cymbals"] > 0)
    known = durations[durations >= 0]
    short = not known.size or float(np.median(known)) <= 0.5 * parsed.ppq  # drum hits are short
    gaps = np.diff(np.unique(ticks))  # between onsets; the median ignores the pauses of a long take
    dense = not gaps.size or parsed.ppq // 16 <= float(np.median(gaps)) <= 2 * parsed.ppq  # 64ths to half notes
    close = np.diff(ticks) <= parsed.ppq // 16  # within a 64th: played together (live hits are never exact)
    together = np.zeros(pitches.size, dtype=bool)
    together[1:] |= close
    together[:-1] |= close
    families = sum(value >= 0.02 for value in share.values())
    if kit and concentrated and short and dense and pitches.size >= 8 and (together.mean() >= 0.15 or families >= 3):
        return SURE
    return DOUBTFUL if short or share["kick"] + share["snare"] >= 0.5 else NOT_DRUMS


def choose_drum_channels(parsed: ParsedMidi, drum_channel: int | None = None) -> tuple[set[int], list[str]]:
    """The 0-based drum channels and notices: ``drum_channel`` (1-based) when given, else channel 10 (and
    channels a GM2/XG bank select marks as drums), else drum-like channels, else a :class:`NoDrumsError`."""
    present = sorted(np.unique(parsed.channels).tolist())
    mapped = _CLASS_OF_PITCH[parsed.pitches] >= 0
    notices: list[str] = []
    if drum_channel is not None:
        chosen = int(drum_channel) - 1
        if chosen not in present:
            where = " and ".join(str(c + 1) for c in present[:8])
            raise NoDrumsError(f"Channel {chosen + 1} has no notes; the file's notes are on channel"
                               f"{'s' * (len(present) > 1)} {where}.", [c + 1 for c in present])
        drums = {chosen}
        notices.append(f"Channel {chosen + 1} was read as drums, as asked.")
    else:
        marked = {DRUM_CHANNEL} | {c for _, c, value in parsed.bank_msb if value in (120, 127)}
        drums = {c for c in marked if c in present}
        for channel in sorted(drums - {DRUM_CHANNEL}):
            notices.append(f"Channel {channel + 1} is set to a drum kit (bank select) and was read as drums.")
    usable = drums and bool((mapped & np.isin(parsed.channels, sorted(drums))).any())
    if not usable and drum_channel is None:
        likeness = {c: looks_like_drums(parsed, c) for c in present if c not in drums}
        candidates = [c for c, level in likeness.items() if level == SURE]
        if candidates:
            listed = " and ".join(str(c + 1) for c in candidates)
            word = "Channels" if len(candidates) > 1 else "Channel"
            notices.append(f"{word} {listed} look{'s' * (len(candidates) == 1)} like a drum part: read as drums "
                           "(channel 10 has no drum notes).")
            drums, usable = set(candidates), True
        elif not drums:
            maybe = [c for c, level in likeness.items() if level == DOUBTFUL]
            offer = [c + 1 for c in sorted(present, key=lambda c: (-likeness.get(c, 0), c))]
            if maybe:
                c = maybe[0] + 1
                raise NoDrumsError(f"No drum notes on channel 10; channel {c} may be a drum part (its notes are on "
                                   f"kit pitches): if it is, use --drum_channel {c} (in the app: 'treat channel {c} "
                                   "as drums').", offer)
            raise NoDrumsError(f"No drum notes: the file has {list_channels(parsed, present)} only.", offer)
    if not usable:
        odd = sorted(set(parsed.pitches[np.isin(parsed.channels, sorted(drums))].tolist()))
        examples = ", ".join(str(p) for p in odd[:3])
        raise NoDrumsError(f"The drum notes use pitches outside the General MIDI drum map (e.g. {examples}), "
                           "so none could be used.", [c + 1 for c in present if c not in drums])
    others = [c for c in present if c not in drums]
    if others:
        used = "the drums were" if drum_channel is None else f"channel {drum_channel} was"
        notices.append(f"Only {used} used; {list_channels(parsed, others)} ignored.")
    on_drums = np.isin(parsed.channels, sorted(drums))
    dropped = parsed.pitches[on_drums & ~mapped]
    if dropped.size:
        examples = ", ".join(str(p) for p in sorted(set(dropped.tolist()))[:3])
        notices.append(f"{dropped.size} drum notes at pitches outside the drum map (e.g. {examples}) were dropped.")
    return drums, notices
