"""A forgiving Standard MIDI File reader for untrusted bytes.

Uploads come from DAWs, phone apps, web downloads and broken disks, so this reader never
trusts a length, a count or a status byte.  It reads what can be read, records what was
wrong as one-sentence notes, and raises :class:`InputError` only when nothing usable is left.
Every loop is bounded by the size of the input and the number of notes kept is capped, so no
file can make it hang or grow memory without bound.

What it handles, and why:
- content sniffing (images, archives, audio, text, MIDI 2.0 clips) so the reason names the file type;
- RIFF ``RMID`` wrappers (``.rmi``) and junk before ``MThd`` (e.g. a MacBinary header);
- truncation anywhere, track lengths that lie (too short or too long), unknown chunks (skipped,
  as the spec asks), garbage between or after chunks (resynchronised on the next ``MTrk``);
- running status, which meta and sysex events cancel (a data byte right after one reuses the
  last channel status, with a note, because buggy writers rely on it);
- sysex and ``F7`` escape packets, undefined/system status bytes (skipped), data bytes above 127
  (clipped, as writers that emit them mean "loudest"), variable-length numbers over 4 bytes
  (the track is damaged from there on).
Time stays in file ticks here; :mod:`musicvae.midi.parse` turns ticks into beats.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

MAX_NOTES = 1_000_000  # note-ons kept per file; a dense hour of drumming is ~50k
MAX_EVENTS_KEPT = 100_000  # tempo, meter, program and bank events kept per file (each list)
MAX_TRACKS = 65_535  # the most a header can announce
_SYSTEM_DATA_BYTES = {0xF1: 1, 0xF2: 2, 0xF3: 1}  # other F1-FE bytes carry no data


class InputError(ValueError):
    """A file the loader cannot use; the message is one sentence for a musician."""


class InternalError(InputError):
    """A bug of ours met while reading a file.

    Still an :class:`InputError` (the musician gets one sentence, never a traceback), but told
    apart so that logs and tests can fail on it; ``__cause__`` holds the original exception.
    """


@dataclass(slots=True)
class TrackInfo:
    number: int  # 1-based, in file order
    name: str = ""
    end_tick: int = 0  # tick of the end-of-track event (or of the last event read)
    note_ons: int = 0


@dataclass
class Smf:
    """The parts of a MIDI file that matter for drums, in file ticks."""

    format: int
    ppq: int  # ticks per quarter note; 0 when the file counts SMPTE frames
    ticks_per_second: float  # SMPTE files only, else 0
    declared_tracks: int
    tracks: list[TrackInfo] = field(default_factory=list)
    # note-ons with velocity > 0, one entry per note, in reading order (compact: ~22 bytes a note)
    note_tick: array = field(default_factory=lambda: array("q"))
    note_channel: bytearray = field(default_factory=bytearray)
    note_pitch: bytearray = field(default_factory=bytearray)
    note_velocity: bytearray = field(default_factory=bytearray)
    note_track: array = field(default_factory=lambda: array("i"))
    note_duration: array = field(default_factory=lambda: array("q"))  # -1 when no note-off came
    tempos: list[tuple[int, int, int]] = field(default_factory=list)  # (tick, microseconds per quarter, track)
    time_signatures: list[tuple[int, int, int, int]] = field(default_factory=list)  # (tick, num, den exp, track)
    programs: list[tuple[int, int, int]] = field(default_factory=list)  # (tick, channel, program)
    bank_msb: list[tuple[int, int, int]] = field(default_factory=list)  # (tick, channel, CC0 value)
    problems: list[str] = field(default_factory=list)  # damage found, one sentence each
    wrapper: str = ""  # e.g. "RIFF" when the MIDI came out of a wrapper
    zero_velocity_notes: int = 0
    notes_beyond_limit: int = 0  # tracks cut at a note-on after max_tick (the rest of the track is skipped)
    notes_over_cap: int = 0  # tracks cut at a note-on past MAX_NOTES
    clipped_bytes: int = 0
    skipped_bytes: int = 0  # undefined or system status bytes inside tracks
    running_status_breaks: int = 0
    unknown_chunks: int = 0

    @property
    def num_notes(self) -> int:
        return len(self.note_tick)


# ---------------------------------------------------------------------------------------------
# sniffing


def _is_text(head: bytes) -> bool:
    """Mostly printable UTF-8 with no NUL bytes: a text file, not a binary format."""
    if b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = head[:-3].decode("utf-8", errors="replace")  # the cut may split a character
        if text.count("\ufffd") > 2:
            return False
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return printable >= 0.95 * max(len(text), 1)


def sniff(data: bytes) -> str:
    """A one-sentence reason when ``data`` is plainly not a MIDI file, else ''."""
    if not data:
        return "The file is empty."
    head = data[:512]
    riff_kind = head[8:12] if head[:4] == b"RIFF" else b""
    known = (
        (head.startswith(b"\x89PNG"), "This is a PNG image, not a MIDI file."),
        (head.startswith(b"\xff\xd8\xff"), "This is a JPEG image, not a MIDI file."),
        (head[:6] in (b"GIF87a", b"GIF89a"), "This is a GIF image, not a MIDI file."),
        (riff_kind == b"WEBP", "This is a WebP image, not a MIDI file."),
        (head.startswith(b"%PDF"), "This is a PDF document, not a MIDI file."),
        (head[:4] in (b"PK\x03\x04", b"PK\x05\x06"),
         "This is a ZIP archive, not a MIDI file: unzip it and choose the .mid file inside."),
        (head.startswith(b"\x1f\x8b"),
         "This is a gzip archive, not a MIDI file: unpack it and choose the .mid file inside."),
        (head.startswith(b"Rar!") or head.startswith(b"7z\xbc\xaf"),
         "This is a compressed archive, not a MIDI file: unpack it and choose the .mid file inside."),
        (riff_kind == b"WAVE", "This is a WAV audio recording, not a MIDI file: the loader needs MIDI notes."),
        (head.startswith(b"ID3") or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"),
         "This is an MP3 audio recording, not a MIDI file: the loader needs MIDI notes."),
        (head.startswith(b"OggS") or head.startswith(b"fLaC") or head[4:8] == b"ftyp"
         or (head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC")),
         "This is an audio recording, not a MIDI file: the loader needs MIDI notes."),
        (riff_kind == b"sfbk", "This is a SoundFont (instrument sounds), not a MIDI file."),
        (head.startswith(b"XMF_"), "This is an XMF (mobile) file, not a standard MIDI file: export it as .mid."),
        (head.startswith(b"SMF2CLIP"),
         "This is a MIDI 2.0 clip file; only standard MIDI files (MIDI 1.0) are supported, so export it as MIDI 1.0."),
        (head.startswith(b"MTrk"), "The file holds a MIDI track but no MIDI header ('MThd'), so it cannot be timed."),
        (head.startswith(b"\x7fELF") or head.startswith(b"MZ"), "This is a program, not a MIDI file."),
    )
    for matched, reason in known:
        if matched:
            return reason
    if b"MThd" in data[:4096] or riff_kind == b"RMID":
        return ""
    if _is_text(head):
        if b"<score-partwise" in data[:4096] or b"<score-timewise" in data[:4096]:
            return "This is a MusicXML score, not a MIDI file: export it from your notation program as MIDI."
        return "This is a text file, not a MIDI file."
    return "This is not a MIDI file (it does not start with 'MThd')."


def unwrap(data: bytes) -> tuple[bytes, str]:
    """The standard MIDI file inside ``data`` and what was removed around it ('' if nothing)."""
    if data[:4] == b"RIFF" and data[8:12] == b"RMID":
        pos = 12
        while pos + 8 <= len(data):  # walk the RIFF chunks (sizes are little-endian, padded to even)
            size = int.from_bytes(data[pos + 4 : pos + 8], "little")
            if data[pos : pos + 4] == b"data" and data[pos + 8 : pos + 12] == b"MThd":
                return data[pos + 8 : pos + 8 + size], "RIFF"
            pos += 8 + size + (size & 1)
        start = data.find(b"MThd")  # chunk sizes that lie: fall back to the MIDI header itself
        if start < 0:
            raise InputError("This RIFF MIDI (.rmi) file holds no MIDI data.")
        return data[start:], "RIFF"
    start = data.find(b"MThd", 0, 4096)
    if start > 0:
        return data[start:], f"{start} bytes before the MIDI header"
    return data, ""


# ---------------------------------------------------------------------------------------------
# reading


def _plausible_chunk(data: bytes, pos: int) -> bool:
    """Four printable ASCII characters: the start of a chunk (MTrk or one to skip)."""
    ident = data[pos : pos + 4]
    return len(ident) == 4 and all(0x20 <= b <= 0x7E for b in ident)


class _Reader:
    """Reads the chunks of one file into an :class:`Smf`."""

    def __init__(self, data: bytes, smf: Smf, max_tick: int, max_notes: int) -> None:
        self.data = data
        self.smf = smf
        self.max_tick = max_tick
        self.max_notes = max_notes

    def read_chunks(self, pos: int) -> None:
        data, smf = self.data, self.smf
        size = len(data)
        while pos + 8 <= size:
            ident = data[pos : pos + 4]
            length = int.from_bytes(data[pos + 4 : pos + 8], "big")
            if ident == b"MTrk":
                if len(smf.tracks) >= MAX_TRACKS:
                    smf.problems.append(f"Only the first {MAX_TRACKS} tracks were read.")
                    break
                pos = self.read_track(pos + 8, pos + 8 + length)
            elif _plausible_chunk(data, pos):
                smf.unknown_chunks += 1  # the spec asks readers to skip chunks they do not know
                if pos + 8 + length <= size:
                    pos += 8 + length
                else:
                    found = data.find(b"MTrk", pos + 8)
                    if found < 0:
                        break
                    smf.problems.append("A damaged block inside the file was skipped.")
                    pos = found
            else:
                found = data.find(b"MTrk", pos)
                if found < 0:
                    if len(smf.tracks) < smf.declared_tracks:
                        smf.problems.append(f"{size - pos} unreadable bytes at the end of the file were ignored.")
                    pos = size
                    break
                smf.problems.append(f"{found - pos} bytes of unreadable data between tracks were skipped.")
                pos = found
        tail = data[pos:]
        if tail and b"MTrk".startswith(tail[:4]) and len(smf.tracks) < smf.declared_tracks:
            smf.problems.append(f"The file ends at the start of track {len(smf.tracks) + 1} (truncated download?).")

    def read_track(self, start: int, stop: int) -> int:
        """Read one MTrk; return where the next chunk starts (trusting lengths only when they agree)."""
        data, smf = self.data, self.smf
        size = len(data)
        info = TrackInfo(len(smf.tracks) + 1)
        smf.tracks.append(info)
        state = [0, 0, 0]  # tick, running status, last channel status (kept across the lying-length retry)
        pos, outcome = self.read_events(start, min(stop, size), state, info)
        if outcome == "end" and stop < size and not _plausible_chunk(data, stop) and not _plausible_chunk(data, pos):
            # no end-of-track where the length says, and no chunk follows: the length is too short
            pos, outcome = self.read_events(pos, size, state, info)
        info.end_tick = state[0]
        where = f"track {info.number}"
        if outcome == "limit":
            if stop <= size and (stop == size or _plausible_chunk(data, stop)):
                return stop
            found = data.find(b"MTrk", pos)
            return size if found < 0 else found
        if outcome == "truncated" or (outcome == "end" and stop > size):
            smf.problems.append(f"The file ends in the middle of {where} (truncated download?).")
            return size
        if outcome.startswith("damaged"):
            smf.problems.append(f"{where.capitalize()} is damaged ({outcome.split(': ', 1)[1]}); "
                                "the rest of it was skipped.")
            if stop <= size and data[stop : stop + 4] == b"MTrk":
                return stop
            found = data.find(b"MTrk", pos)
            return size if found < 0 else found
        if stop <= size and (stop == pos or data[stop : stop + 4] == b"MTrk"):
            return stop
        if data[pos : pos + 4] == b"MTrk":
            return pos  # the length was too long: the next track starts right after end-of-track
        if stop <= size and (stop == size or _plausible_chunk(data, stop)):
            return stop  # bytes between end-of-track and the declared end are ignored, as the spec says
        found = data.find(b"MTrk", pos)
        return size if found < 0 else found

    def read_events(self, pos: int, stop: int, state: list[int], info: TrackInfo) -> tuple[int, str]:
        """Events from ``pos`` until end-of-track or ``stop``: 'eot', 'end', 'truncated' or 'damaged: why'.

        The hot loop of the reader, so it works on locals and reads bytes by index.
        """
        data, smf = self.data, self.smf
        size = len(data)
        tick, status, last_channel = state
        max_tick, max_notes = self.max_tick, self.max_notes
        ticks, channels, pitches = smf.note_tick, smf.note_channel, smf.note_pitch
        velocities, tracks, durations = smf.note_velocity, smf.note_track, smf.note_duration
        track_no = info.number
        open_notes: dict[int, int] = {}  # channel * 128 + pitch -> index of the sounding note
        outcome = "end"
        while pos < stop:
            event_start = pos
            byte = data[pos]
            pos += 1
            delta = byte & 0x7F
            if byte & 0x80:  # a variable-length number: at most 4 bytes
                for _ in range(3):
                    if pos >= size:
                        outcome = "truncated"
                        break
                    byte = data[pos]
                    pos += 1
                    delta = (delta << 7) | (byte & 0x7F)
                    if not byte & 0x80:
                        break
                else:
                    outcome = f"damaged: a time value longer than 4 bytes at byte {event_start}"
                if outcome != "end":
                    break
            tick += delta
            if pos >= size:
                outcome = "truncated"
                break
            byte = data[pos]
            if byte & 0x80:
                pos += 1
                if byte < 0xF0:
                    status = last_channel = byte
                elif byte == 0xFF or byte == 0xF0 or byte == 0xF7:
                    status = 0  # meta and sysex events cancel running status
                    result = self.meta_or_sysex(byte, pos, tick, info, stop)
                    if isinstance(result, str):
                        outcome = result
                        break
                    pos = result
                    if pos < 0:  # end of track
                        pos = -pos
                        outcome = "eot"
                        break
                    continue
                else:  # system common / real-time / undefined: not valid in a file, skip with its data
                    skip = _SYSTEM_DATA_BYTES.get(byte, 0)
                    smf.skipped_bytes += 1 + skip
                    pos += skip
                    continue
            elif not status:
                if not last_channel:
                    outcome = f"damaged: a data byte where an event should start at byte {pos}"
                    break
                status = last_channel  # running status after a meta/sysex event: a rule break we forgive
                smf.running_status_breaks += 1
            kind = status & 0xF0
            if kind == 0xC0 or kind == 0xD0:
                if pos >= size:
                    outcome = "truncated"
                    break
                value = data[pos]
                pos += 1
                if value > 127:
                    smf.clipped_bytes += 1
                    value = 127
                if kind == 0xC0 and len(smf.programs) < MAX_EVENTS_KEPT:
                    smf.programs.append((tick, status & 0x0F, value))
                continue
            if pos + 2 > size:
                outcome = "truncated"
                break
            first = data[pos]
            second = data[pos + 1]
            pos += 2
            if (first | second) & 0x80:
                smf.clipped_bytes += 1
                first, second = min(first, 127), min(second, 127)
            if kind == 0x90 and second:
                info.note_ons += 1
                if tick > max_tick or len(ticks) >= max_notes:
                    # past a limit: skip the rest of this track, so time stays bounded too
                    if tick > max_tick:
                        smf.notes_beyond_limit += 1
                    else:
                        smf.notes_over_cap += 1
                    outcome = "limit"
                    break
                else:
                    channel = status & 0x0F
                    open_notes[channel * 128 + first] = len(ticks)
                    ticks.append(tick)
                    channels.append(channel)
                    pitches.append(first)
                    velocities.append(second)
                    tracks.append(track_no)
                    durations.append(-1)
            elif kind == 0x80 or kind == 0x90:  # note-off (or note-on with velocity 0)
                if kind == 0x90:
                    smf.zero_velocity_notes += 1
                index = open_notes.pop((status & 0x0F) * 128 + first, -1)
                if index >= 0:  # note-offs without a note-on are ignored: onsets are what matter
                    durations[index] = tick - ticks[index]
            elif kind == 0xB0 and first == 0 and len(smf.bank_msb) < MAX_EVENTS_KEPT:
                smf.bank_msb.append((tick, status & 0x0F, second))
        state[:] = [tick, status, last_channel]
        info.end_tick = tick
        return pos, outcome

    def meta_or_sysex(self, kind: int, pos: int, tick: int, info: TrackInfo, stop: int) -> int | str:
        """Skip or read one meta/sysex event; the next position, its negative at end-of-track, or an outcome.

        ``stop`` is the declared end of the track: an event running past it while the next track
        header sits right there has a lying length (damage), not a cut file.
        """
        data, smf = self.data, self.smf
        meta_type = -1
        if kind == 0xFF:
            if pos >= len(data):
                return "truncated"
            meta_type = data[pos]
            if meta_type > 127:
                return f"damaged: an invalid meta event at byte {pos - 1}"
            pos += 1
        length, pos = _read_vlq(data, pos)
        if length < 0:
            return "truncated" if length == -1 else f"damaged: a length longer than 4 bytes at byte {pos}"
        end = pos + length
        if end > stop and data[stop : stop + 4] == b"MTrk":
            return f"damaged: an event longer than its track at byte {pos}"
        if end > len(data):
            return "truncated"
        if meta_type == 0x2F:
            return -end
        if meta_type == 0x51 and length >= 3 and len(smf.tempos) < MAX_EVENTS_KEPT:
            smf.tempos.append((tick, int.from_bytes(data[pos : pos + 3], "big"), info.number))
        elif meta_type == 0x58 and length >= 2 and len(smf.time_signatures) < MAX_EVENTS_KEPT:
            smf.time_signatures.append((tick, data[pos], data[pos + 1], info.number))
        elif meta_type in (0x03, 0x04) and not info.name:
            info.name = data[pos : min(end, pos + 60)].decode("latin-1").strip()
        return end


def _read_vlq(data: bytes, pos: int) -> tuple[int, int]:
    """(value, next position); value -1 when the data ends, -2 when longer than 4 bytes."""
    value = 0
    for _ in range(4):
        if pos >= len(data):
            return -1, pos
        byte = data[pos]
        pos += 1
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value, pos
    return -2, pos


def read_smf(data: bytes, max_beats: int | None = None, max_notes: int = MAX_NOTES) -> Smf:
    """Parse a standard MIDI file (or RIFF-wrapped one); InputError when nothing can be read.

    ``max_beats`` bounds the time read: note-ons later than that are counted, not kept (for
    SMPTE files a beat counts as a second here, and :mod:`musicvae.midi.parse` trims in real beats).
    """
    data = bytes(data)
    reason = sniff(data)
    if reason:
        raise InputError(reason)
    data, wrapper = unwrap(data)
    if len(data) < 14:
        if not data.startswith(b"MThd"[: len(data)]) or len(data) < 4:
            raise InputError("This is not a MIDI file (it does not start with 'MThd').")
        raise InputError("The file ends inside its MIDI header (truncated download?).")
    header_length = int.from_bytes(data[4:8], "big")
    fmt = int.from_bytes(data[8:10], "big")
    declared = int.from_bytes(data[10:12], "big")
    division = int.from_bytes(data[12:14], "big")
    first_chunk = 8 + header_length
    if header_length < 6:
        if data[14:18] != b"MTrk":
            raise InputError("The MIDI header is damaged (it is shorter than the standard 6 bytes).")
        first_chunk = 14  # a wrong length with a whole header and the first track right after it
    if first_chunk > len(data) or (data[first_chunk : first_chunk + 4] != b"MTrk" and data[14:18] == b"MTrk"):
        first_chunk = 14  # a header length that lies, with the first track right after 6 bytes
    if division & 0x8000:
        fps = 256 - (division >> 8)  # a negative frame rate in two's complement
        per_frame = division & 0xFF
        if not per_frame:
            raise InputError("The file's SMPTE time division has 0 ticks per frame, so its notes cannot be timed.")
        ppq, ticks_per_second = 0, (29.97 if fps == 29 else float(fps)) * per_frame
    else:
        if division == 0:
            raise InputError("The file's time division is 0 ticks per beat, so its notes cannot be placed on beats.")
        ppq, ticks_per_second = division, 0.0
    smf = Smf(fmt, ppq, ticks_per_second, declared, wrapper=wrapper)
    if fmt > 2:
        smf.problems.append(f"The header names an unknown format ({fmt}); the tracks were read as format 1.")
    per_beat = ppq or ticks_per_second
    max_tick = int(max_beats * per_beat) if max_beats is not None else 1 << 62
    _Reader(data, smf, max_tick, max_notes).read_chunks(first_chunk)
    if not smf.tracks:
        if first_chunk >= len(data):
            raise InputError("The file ends right after its MIDI header: it holds no tracks (truncated download?).")
        raise InputError("The file has a MIDI header but no readable tracks.")
    if 0 < declared != len(smf.tracks) and not any("truncated" in p for p in smf.problems):
        if len(smf.tracks) < declared:
            smf.problems.append(f"The header announces {declared} tracks but the file holds {len(smf.tracks)}.")
    return smf
