"""The hardened loader: every kind of file a user may bring gives grooves or one clear reason.

Each test builds its file from bytes right here (see the helpers below), so every case of
issue 5 is pinned down without fixture files; real GMD files are used for the whole-corpus check.
"""

from __future__ import annotations

import csv
import io
import struct
import subprocess
import sys

import numpy as np
import pytest

from musicvae.midi.loader import MAX_FILE_BYTES, NoDrumsError, load_grooves
from musicvae.midi.parse import MAX_BARS, InputError, InternalError, file_windows, parse_midi
from musicvae.pattern import PITCH_TO_CLASS

PPQ = 480
STEP = PPQ // 4  # ticks per 16th note
BAR = 16 * STEP
EOT = b"\x00\xff\x2f\x00"
KICK, SNARE, HAT = 36, 38, 42
GMD_BEAT = "drummer1/session1/1_funk_80_beat_4-4.mid"


# ---------------------------------------------------------------------------------------------
# building SMF bytes


def vlq(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def track(events: list[tuple[int, bytes]], end: int | None = None, eot: bool = True) -> bytes:
    """A track body from (absolute tick, raw event bytes); end-of-track at ``end`` (default: last event)."""
    out, now = bytearray(), 0
    for tick, raw in sorted(events, key=lambda e: e[0]):
        out += vlq(tick - now) + raw
        now = tick
    if eot:
        out += vlq(max((end or now) - now, 0)) + b"\xff\x2f\x00"
    return bytes(out)


def chunk(ident: bytes, body: bytes, length: int | None = None) -> bytes:
    return ident + struct.pack(">I", len(body) if length is None else length) + body


def smf(*tracks: bytes, fmt: int | None = None, division: int = PPQ, ntrks: int | None = None) -> bytes:
    fmt = (0 if len(tracks) == 1 else 1) if fmt is None else fmt
    header = chunk(b"MThd", struct.pack(">HHH", fmt, len(tracks) if ntrks is None else ntrks, division))
    return header + b"".join(chunk(b"MTrk", t) for t in tracks)


def note(tick: int, pitch: int, channel: int = 9, velocity: int = 100, length: int = STEP // 2):
    """Note-on and note-off events."""
    return [(tick, bytes([0x90 | channel, pitch, velocity])), (tick + length, bytes([0x80 | channel, pitch, 0]))]


def rock(bars: int = 4, channel: int = 9, start: int = 0, length: int = STEP // 2, fill_last: bool = False):
    """A rock beat: kick on 1 and 3, snare on 2 and 4, eighth-note hats (a fill of toms in the last bar)."""
    events = []
    for bar in range(bars):
        base = start + bar * BAR
        for step in range(0, 16, 2):
            events += note(base + step * STEP, HAT, channel, 80, length)
        events += note(base, KICK, channel, 110, length) + note(base + 8 * STEP, KICK, channel, 100, length)
        events += note(base + 4 * STEP, SNARE, channel, 105, length)
        events += note(base + 12 * STEP, SNARE, channel, 105, length)
        if fill_last and bar == bars - 1:
            events += [e for s in (13, 14, 15) for e in note(base + s * STEP, 45 + s - 13, channel, 90, length)]
    return events


def meta(tick: int, kind: int, payload: bytes) -> tuple[int, bytes]:
    return tick, bytes([0xFF, kind]) + vlq(len(payload)) + payload


def tempo(tick: int, qpm: float) -> tuple[int, bytes]:
    return meta(tick, 0x51, int(round(60e6 / qpm)).to_bytes(3, "big"))


def meter(tick: int, num: int, den_exp: int) -> tuple[int, bytes]:
    return meta(tick, 0x58, bytes([num, den_exp, 24, 8]))


def groove(bars: int = 4, **kwargs) -> bytes:
    return smf(track([tempo(0, 100), meter(0, 4, 2)] + rock(bars, **kwargs), end=bars * BAR))


def rock_grid(bars: int = 4) -> np.ndarray:
    hits = np.zeros((bars * 16, 9), dtype=bool)
    for bar in range(bars):
        hits[bar * 16 : bar * 16 + 16 : 2, PITCH_TO_CLASS[HAT]] = True
        hits[[bar * 16, bar * 16 + 8], 0] = True
        hits[[bar * 16 + 4, bar * 16 + 12], 1] = True
    return hits


def reason(data: bytes, name: str = "x.mid", drum_channel: int | None = None) -> str:
    with pytest.raises(InputError) as caught:
        load_grooves(data, name, drum_channel)
    assert not isinstance(caught.value, InternalError), f"a bug, not a reason: {caught.value}"
    message = str(caught.value)
    assert message.endswith((".", ")", "?")) and "\n" not in message and len(message) < 200
    return message


def loads(data: bytes, name: str = "x.mid", drum_channel: int | None = None):
    loaded = load_grooves(data, name, drum_channel)
    assert loaded.windows and all(w.num_steps == 64 and w.hits.shape == (64, 9) for w in loaded.windows)
    assert all(isinstance(n, str) and "\n" not in n for n in loaded.notices)
    return loaded


def has(notices: list[str], *words: str) -> bool:
    return any(all(w.lower() in n.lower() for w in words) for n in notices)


# ---------------------------------------------------------------------------------------------
# the plain case and names


def test_plain_groove_loads_exactly():
    loaded = loads(groove(4), "beat.mid")
    assert len(loaded.windows) == 1 and loaded.notices == []
    window = loaded.windows[0]
    assert (window.hits == rock_grid()).all() and window.qpm == pytest.approx(100)
    assert window.source == "beat.mid bars 1-4"
    assert loaded.summary["meters"] == ["4/4"] and loaded.summary["drum_notes"] == 4 * 12


@pytest.mark.parametrize("name", ["BEAT.MID", "beat", "beat.mid.txt", "beat.kar.mid", ""])
def test_names_do_not_matter_content_is_sniffed(name):
    assert (loads(groove(4), name).windows[0].hits == rock_grid()).all()


def test_reader_agrees_with_mido_on_a_multitrack_file():
    mido = pytest.importorskip("mido")
    import io

    data = smf(track([tempo(0, 90), meter(0, 4, 2)]), track(rock(2) + note(100, 60, 0)), track(rock(1, channel=3)))
    parsed = parse_midi(data)
    expected = []
    for t in mido.MidiFile(file=io.BytesIO(data)).tracks:
        now = 0
        for message in t:
            now += message.time
            if message.type == "note_on" and message.velocity:
                expected.append((now, message.channel, message.note, message.velocity))
    assert sorted(expected) == sorted(zip(parsed.ticks.tolist(), parsed.channels.tolist(),
                                          parsed.pitches.tolist(), parsed.velocities.tolist()))
    assert parsed.time_signatures == [(0, 4, 4)] and parsed.tempos[0][1] == pytest.approx(90)


# ---------------------------------------------------------------------------------------------
# not MIDI


@pytest.mark.parametrize("data, words", [
    (b"", "empty"),
    (b"\x89PNG\r\n\x1a\n" + bytes(100), "PNG image"),
    (b"\xff\xd8\xff\xe0" + bytes(100), "JPEG image"),
    (b"GIF89a" + bytes(100), "GIF image"),
    (b"%PDF-1.7\n" + bytes(100), "PDF document"),
    (b"PK\x03\x04" + bytes(100), "ZIP archive"),
    (b"\x1f\x8b\x08\x00" + bytes(100), "gzip archive"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(100), "WAV audio"),
    (b"ID3\x03\x00" + bytes(100), "MP3 audio"),
    (b"SMF2CLIP" + bytes(100), "MIDI 2.0 clip"),
    (b"RIFF\x24\x00\x00\x00sfbkLIST" + bytes(100), "SoundFont"),
    (b"XMF_2.00" + bytes(100), "XMF"),
    (b"X:1\nT:My tune\nK:C\nCDEF GABc|\n", "text file"),
    (b'<?xml version="1.0"?>\n<score-partwise version="3.1">', "MusicXML"),
    (b"MTrk\x00\x00\x00\x04\x00\xff\x2f\x00", "no MIDI header"),
    (bytes(range(256)) * 4, "not a MIDI file"),
    (b"MThx" + bytes(20), "not a MIDI file"),
])
def test_not_midi_gets_a_named_reason(data, words):
    assert words.lower() in reason(data).lower()


def test_png_named_mid_is_still_a_png():
    assert reason(b"\x89PNG\r\n\x1a\n" + bytes(64), "song.mid") == "This is a PNG image, not a MIDI file."


def test_real_gzip_of_a_midi_file_says_unpack_it():
    import gzip

    assert "unpack it" in reason(gzip.compress(groove(4)))


def test_file_size_cap():
    assert f"limit is {MAX_FILE_BYTES // 2**20} MB" in reason(groove(4) + bytes(MAX_FILE_BYTES))


# ---------------------------------------------------------------------------------------------
# wrappers and structure


def rmid(midi: bytes, data_size: int | None = None) -> bytes:
    """A RIFF MIDI (.rmi) file: little-endian sizes, the SMF in a 'data' chunk, an INFO list after it."""
    body = b"RMID" + b"data" + struct.pack("<I", len(midi) if data_size is None else data_size) + midi
    body += b"LIST" + struct.pack("<I", 12) + b"INFOICMT" + struct.pack("<I", 0)
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize("name", ["song.rmi", "song.mid"])
def test_riff_midi_is_unwrapped(name):
    loaded = loads(rmid(groove(4)), name)
    assert (loaded.windows[0].hits == rock_grid()).all() and has(loaded.notices, "RIFF")


def test_riff_with_a_lying_size_still_unwraps():
    assert (loads(rmid(groove(4), data_size=1 << 30)).windows[0].hits == rock_grid()).all()


def test_junk_before_the_header_is_skipped():
    loaded = loads(bytes(128) + groove(4))  # e.g. a MacBinary header
    assert has(loaded.notices, "128 bytes before the MIDI header")


def test_truncated_inside_header():
    assert reason(groove(4)[:10]) == "The file ends inside its MIDI header (truncated download?)."


def test_header_only():
    assert "holds no tracks" in reason(groove(4)[:14])


def test_truncated_before_any_note():
    data = smf(track([tempo(0, 100)] + rock(4)))
    assert reason(data[:14 + 8 + 5]) == "The file ends in the middle of track 1 (truncated download?)."


def test_truncated_mid_track_keeps_the_notes_before_the_cut():
    data = groove(8)
    loaded = loads(data[: len(data) * 3 // 4])
    assert has(loaded.notices, "ends in the middle of track 1", "truncated", "notes before the cut were used")
    assert loaded.windows[0].hits[:16].any()


def test_every_truncation_point_gives_grooves_or_a_reason():
    """Cut anywhere: a one-sentence reason until the first drum note is whole, then grooves that
    say the file was cut and keep every note before the cut (never fewer for a longer prefix)."""
    data = smf(track([tempo(0, 100)]), track(rock(2, fill_last=True)), track(rock(1, channel=3)))
    full = loads(data)
    assert full.summary["drum_notes"] == 27 and not has(full.notices, "truncated")
    first_groove, kept = None, []
    for cut in range(len(data)):
        try:
            loaded = load_grooves(data[:cut], "cut.mid")
        except InternalError as error:
            raise AssertionError(f"cut at byte {cut}: {error}") from error
        except InputError as error:
            assert first_groove is None, f"cut at byte {cut} gives no groove, cut at {first_groove} did: {error}"
            message = str(error)
            assert message.endswith((".", ")", "?")) and "\n" not in message and len(message) < 200
            continue
        first_groove = cut if first_groove is None else first_groove
        assert loaded.windows and all(w.hits.shape == (64, 9) for w in loaded.windows)
        assert has(loaded.notices, "truncated") or has(loaded.notices, "announces 3 tracks"), (cut, loaded.notices)
        kept.append(loaded.summary["drum_notes"])
    assert first_groove is not None and first_groove < len(data) // 4  # the drum track is the second of three
    assert kept == sorted(kept) and 0 < kept[0] and kept[-1] <= 27


def test_missing_end_of_track_is_fine():
    loaded = loads(smf(track(rock(4), eot=False)))
    assert (loaded.windows[0].hits == rock_grid()).all() and loaded.notices == []


def test_header_announces_more_tracks_than_there_are():
    loaded = loads(smf(track(rock(4)), ntrks=3))
    assert has(loaded.notices, "announces 3 tracks", "holds 1")


def test_header_announces_zero_tracks_but_has_one():
    loaded = loads(smf(track(rock(4)), ntrks=0))
    assert (loaded.windows[0].hits == rock_grid()).all()
    assert has(loaded.notices, "header says it has 0 tracks, but 1 track was found and read")
    assert not has(loads(smf(track(rock(4)))).notices, "0 tracks")


def test_track_length_too_long_still_finds_the_next_track():
    first, second = track([tempo(0, 100)]), track(rock(4))
    header = chunk(b"MThd", struct.pack(">HHH", 1, 2, PPQ))
    data = header + chunk(b"MTrk", first, len(first) + 50) + chunk(b"MTrk", second)
    assert (loads(data).windows[0].hits == rock_grid()).all()


def test_track_length_too_short_reads_on_to_end_of_track():
    body = track(rock(4))
    data = chunk(b"MThd", struct.pack(">HHH", 0, 1, PPQ)) + chunk(b"MTrk", body, 10)
    assert (loads(data).windows[0].hits == rock_grid()).all()


def test_meta_event_longer_than_its_track():
    liar = b"\x00\xff\x01\x7fabc" + EOT  # a text event that claims 127 bytes
    loaded = loads(smf(liar, track(rock(4))))
    assert (loaded.windows[0].hits == rock_grid()).all() and has(loaded.notices, "track 1 is damaged")


@pytest.mark.parametrize("length", [0, 5, 1 << 31])
def test_header_length_field_that_lies(length):
    data = groove(4)
    assert (loads(data[:4] + struct.pack(">I", length) + data[8:]).windows[0].hits == rock_grid()).all()


def test_unknown_chunks_are_skipped():
    header = chunk(b"MThd", struct.pack(">HHH", 1, 1, PPQ))
    data = header + chunk(b"XFIH", b"\x01\x02\x03") + chunk(b"MTrk", track(rock(4))) + chunk(b"MXYZ", bytes(40))
    loaded = loads(data)
    assert (loaded.windows[0].hits == rock_grid()).all() and loaded.notices == []


def test_trailing_and_between_garbage():
    loaded = loads(groove(4) + b"\x00\x00\xde\xad\xbe\xef" * 20)
    assert (loaded.windows[0].hits == rock_grid()).all()
    garbage = smf(track([tempo(0, 100)]), track(rock(4)))
    split = garbage.index(b"MTrk", 20)
    loaded = loads(garbage[:split] + b"\x01\xfe\x80junk!" + garbage[split:])
    assert (loaded.windows[0].hits == rock_grid()).all() and has(loaded.notices, "unreadable", "skipped")


def test_hundreds_of_empty_tracks():
    loaded = loads(smf(*[track([])] * 300, track(rock(4))))
    assert loaded.summary["tracks"] == 301


# ---------------------------------------------------------------------------------------------
# illegal bytes


def test_data_bytes_above_127_are_clipped():
    body = track(rock(4)).replace(bytes([0x99, SNARE, 105]), bytes([0x99, SNARE, 0xC8]))
    loaded = loads(smf(body))
    assert (loaded.windows[0].hits == rock_grid()).all()
    assert has(loaded.notices, "8 out-of-range values (above 127) clipped")
    assert loaded.windows[0].velocities[4, 1] == 127


@pytest.mark.parametrize("status", [0xF4, 0xF5, 0xF9, 0xFD, 0xF8])
def test_undefined_status_bytes_are_skipped(status):
    events = rock(4) + [(STEP, bytes([status]))]
    loaded = loads(smf(track(events)))
    assert (loaded.windows[0].hits == rock_grid()).all() and has(loaded.notices, "byte not valid", "was skipped")


def test_running_status_is_read():
    events = b"".join(vlq(0 if i == 0 else 2 * STEP) + (bytes([0x99]) if i == 0 else b"") + bytes([HAT, 80])
                      for i in range(32))
    loaded = loads(smf(events + EOT))
    assert loaded.windows[0].hits[::2, 2].all() and loaded.notices == []


def test_running_status_after_a_meta_event_is_forgiven():
    body = (b"\x00\x99" + bytes([KICK, 100]) + b"\x00\xff\x01\x01a" + vlq(4 * STEP) + bytes([SNARE, 100])
            + vlq(12 * STEP) + bytes([KICK, 100]) + EOT)
    loaded = loads(smf(body))
    assert loaded.windows[0].hits[4, 1] and has(loaded.notices, "status byte", "reused")


def test_sysex_and_escapes_are_skipped():
    events = rock(4) + [(0, b"\xf0\x05\x7e\x7f\x09\x01\xf7"), (STEP, b"\xf7\x03\x90\x3c\x40"), (2 * STEP, b"\xf0\x00")]
    loaded = loads(smf(track(events)))
    assert (loaded.windows[0].hits == rock_grid()).all() and loaded.notices == []


def test_over_long_variable_length_number_damages_the_rest_of_the_track():
    good = track(rock(2), eot=False)
    loaded = loads(smf(good + b"\x81\x80\x80\x80\x00\x99\x24\x64" + EOT))
    assert has(loaded.notices, "track 1 is damaged (a time value longer than 4 bytes")
    assert "longer than 4 bytes" in reason(smf(b"\xff\xff\xff\xff\x7f\x99\x24\x64" + EOT))


def test_a_data_byte_where_an_event_should_start():
    assert "data byte where an event should start" in reason(smf(b"\x00\x24\x64" + EOT))


# ---------------------------------------------------------------------------------------------
# absurd values


def test_ppq_zero():
    assert "0 ticks per beat" in reason(smf(track(rock(4)), division=0))


def test_smpte_division_is_turned_into_beats():
    # 25 fps x 40 ticks = 1000 ticks a second; at 120 qpm a 16th note is 125 ticks
    events = []
    for e_tick, raw in [tempo(0, 120)] + rock(4):
        events.append((e_tick * 125 // STEP, raw))
    loaded = loads(smf(track(events), division=((256 - 25) << 8) | 40))
    assert (loaded.windows[0].hits == rock_grid()).all() and has(loaded.notices, "SMPTE")
    assert loaded.windows[0].qpm == pytest.approx(120)


def test_smpte_without_ticks_per_frame():
    assert "0 ticks per frame" in reason(smf(track(rock(4)), division=(256 - 25) << 8))


def test_tempo_zero_and_extreme_tempo():
    loaded = loads(smf(track([meta(0, 0x51, b"\x00\x00\x00")] + rock(4))))
    assert has(loaded.notices, "tempo 0", "ignored") and loaded.windows[0].qpm == 120
    loaded = loads(smf(track([meta(0, 0x51, b"\x00\x00\x01")] + rock(4))))
    assert (loaded.windows[0].hits == rock_grid()).all()
    assert has(loaded.notices, "out of range") and loaded.windows[0].qpm == 320


@pytest.mark.parametrize("num, den_exp, shown", [(0, 2, "0/4"), (4, 7, "4/128"), (3, 200, "3/2^200")])
def test_impossible_time_signatures_are_ignored(num, den_exp, shown):
    loaded = loads(smf(track([meter(0, num, den_exp)] + rock(4))))
    assert (loaded.windows[0].hits == rock_grid()).all()
    assert has(loaded.notices, f"time signature {shown}", "ignored")


def test_events_hours_after_the_last_note():
    loaded = loads(smf(track(rock(4) + [meta(3 * 3600 * 2 * PPQ, 0x01, b"late")])))
    assert len(loaded.windows) == 1 and (loaded.windows[0].hits == rock_grid()).all()


def test_notes_beyond_the_bar_limit_are_left_out_with_a_notice():
    loaded = loads(smf(track(rock(8) + note((MAX_BARS + 10) * BAR, KICK))))
    assert len(loaded.windows) == 5 and has(loaded.notices, f"longer than {MAX_BARS} bars")


# ---------------------------------------------------------------------------------------------
# content


def test_no_notes():
    assert reason(smf(track([tempo(0, 100), meter(0, 4, 2)]))) == "The file has no notes."


def test_only_velocity_zero_notes():
    events = [(s * STEP, bytes([0x99, KICK, 0])) for s in range(16)]
    assert "velocity 0" in reason(smf(track(events)))


def piano(channel: int = 0, program: int | None = 0, bars: int = 4):
    events = [] if program is None else [(0, bytes([0xC0 | channel, program]))]
    for bar in range(bars):
        for beat, chord in enumerate([(48, 52, 55), (53, 57, 60), (55, 59, 62), (48, 52, 55)]):
            for pitch in chord:
                events += note(bar * BAR + beat * PPQ, pitch, channel, 70, PPQ - 10)
        events += note(bar * BAR, 72, channel, 80, 2 * PPQ)
    return events


def test_piano_only():
    assert reason(smf(track(piano()))) == "No drum notes: the file has piano on channel 1 only."


def test_piano_and_bass_named_by_gm_family():
    bass = [(0, bytes([0xC1, 33]))] + [e for b in range(8) for e in note(b * 2 * PPQ, 36, 1, 90, 2 * PPQ - 10)]
    assert reason(smf(track(piano(program=None) + bass))) == (
        "No drum notes: the file has piano on channel 1 and bass on channel 2 only.")


def test_a_lone_kick_line_off_channel_10_names_the_channel_and_how_to_say_it_is_drums():
    kicks = [e for b in range(4) for s in (0, 8) for e in note(b * BAR + s * STEP, KICK, channel=3)]
    assert reason(smf(track(kicks))) == (
        "No drum notes on channel 10; channel 4 may be a drum part (its notes are on kit pitches): "
        "if it is, use --drum_channel 4 (in the app: 'treat channel 4 as drums').")
    with pytest.raises(NoDrumsError) as caught:
        load_grooves(smf(track(kicks)))
    assert caught.value.channels == [4]


@pytest.mark.parametrize("length", [STEP // 2, 2 * PPQ])  # short hits, or notes held for half a bar
def test_two_kicks_on_channel_1_is_doubtful_and_drum_channel_reads_it(length):
    kicks = note(0, KICK, channel=0, length=length) + note(8 * STEP, KICK, channel=0, length=length)
    assert "--drum_channel 1" in reason(smf(track(kicks)))
    loaded = loads(smf(track(kicks)), drum_channel=1)
    assert loaded.windows[0].hits[[0, 8], 0].all() and loaded.windows[0].num_hits == 8  # the bar, repeated
    assert has(loaded.notices, "channel 1 was read as drums, as asked") and loaded.summary["drum_channels"] == [1]


def test_gm_drums_on_channel_1_are_detected():
    loaded = loads(smf(track(rock(4, channel=0))))
    assert (loaded.windows[0].hits == rock_grid()).all()
    assert has(loaded.notices, "channel 1 looks like a drum part: read as drums")


def test_live_e_drum_performance_on_channel_1_is_read_as_drums(gmd):
    """A Roland V-drums take (GMD was recorded on one) moved to channel 1: live hits are never on one tick."""
    mido = pytest.importorskip("mido")
    song = mido.MidiFile(file=io.BytesIO((gmd / GMD_BEAT).read_bytes()))
    for part in song.tracks:
        for message in part:
            if hasattr(message, "channel"):
                message.channel = 0
    out = io.BytesIO()
    song.save(file=out)
    moved = loads(out.getvalue())
    original = loads((gmd / GMD_BEAT).read_bytes())
    assert has(moved.notices, "channel 1 looks like a drum part")
    assert [w.hits.tobytes() for w in moved.windows] == [w.hits.tobytes() for w in original.windows]
    kick_and_hats = [(t, raw) for t, raw in humanised_rock(8, channel=0) if raw[1] != SNARE]  # 2 families only
    assert has(loads(smf(track(kick_and_hats))).notices, "channel 1 looks like a drum part")
    pause = [(t + 100 * BAR if t >= 4 * BAR else t, raw) for t, raw in kick_and_hats]  # a long take: 100 bars rest
    assert has(loads(smf(track(pause))).notices, "channel 1 looks like a drum part")


def test_melodic_program_or_name_is_not_read_as_drums():
    organ = [(0, bytes([0xC0, 19]))] + rock(4, channel=0)  # a church organ playing kit-like notes
    assert reason(smf(track(organ))).startswith("No drum notes: the file has organ on channel 1 only")
    named = [meta(0, 0x03, b"Piano")] + rock(4, channel=0)
    assert "No drum notes" in reason(smf(track(named)))
    assert loads(smf(track(organ)), drum_channel=1).windows[0].hits.any()  # the user has the last word


def test_drum_channel_takes_that_channel_only_and_says_what_is_missing():
    both = smf(track(rock(4) + rock(4, channel=2, fill_last=True)))
    assert (loads(both).windows[0].hits == rock_grid()).all()
    third = loads(both, drum_channel=3)
    assert third.windows[0].hits[-3:].any() and has(third.notices, "channel 10 ignored")
    assert reason(both, drum_channel=5) == "Channel 5 has no notes; the file's notes are on channels 3 and 10."
    for bad in (0, 17, "1"):
        with pytest.raises(InputError, match="from 1 to 16"):
            load_grooves(both, "x.mid", bad)


def test_drum_track_name_on_another_channel():
    named = [meta(0, 0x03, b"Drums")] + rock(4, channel=2, length=PPQ)  # long notes, but named
    loaded = loads(smf(track(named)))
    assert has(loaded.notices, "channel 3 looks like a drum part")


def test_gm2_drum_bank_on_channel_11():
    loaded = loads(smf(track([(0, bytes([0xBA, 0, 120]))] + rock(4, channel=10))))
    assert (loaded.windows[0].hits == rock_grid()).all() and has(loaded.notices, "channel 11", "drum kit")


def test_pitches_outside_the_drum_map_are_dropped_and_counted():
    loaded = loads(smf(track(rock(4) + note(0, 20) + note(STEP, 90) + note(2 * STEP, 100))))
    assert (loaded.windows[0].hits == rock_grid()).all()
    assert has(loaded.notices, "3 drum notes at pitches outside the drum map", "20, 90, 100")
    assert loaded.summary["notes_dropped"] == 3


def test_only_unknown_pitches():
    assert "outside the General MIDI drum map" in reason(smf(track(note(0, 10) + note(STEP, 11) + note(PPQ, 12))))


def test_note_ons_without_note_offs_and_stray_note_offs():
    events = [(t, raw) for t, raw in rock(4) if raw[0] & 0xF0 == 0x90] + [(5, b"\x89\x30\x00"), (7, b"\x80\x40\x00")]
    assert (loads(smf(track(events))).windows[0].hits == rock_grid()).all()


def test_thousands_of_notes_on_one_tick():
    events = rock(4) + [(0, bytes([0x99, KICK + i % 2, 100])) for i in range(5000)]
    assert loads(smf(track(events))).windows[0].hits[0, 0]


def test_multitrack_song_takes_the_drum_part():
    data = smf(track([tempo(0, 96), meter(0, 4, 2), meta(0, 0x03, b"Song")]), track(piano(0, 0)),
               track([(0, b"\xc1\x21")] + [e for b in range(16) for e in note(b * PPQ, 40, 1, 90, PPQ - 10)]),
               track(rock(4)))
    loaded = loads(data)
    assert (loaded.windows[0].hits == rock_grid()).all() and loaded.windows[0].qpm == pytest.approx(96)
    assert has(loaded.notices, "only the drums were used", "piano on channel 1", "bass on channel 2")


def test_format_2_patterns_play_one_after_another():
    loaded = loads(smf(track(rock(4)), track(rock(4, fill_last=True)), fmt=2))
    assert len(loaded.windows) == 2 and has(loaded.notices, "format 2")
    assert loaded.windows[0].source.endswith("bars 1-4") and loaded.windows[1].source.endswith("bars 6-9")
    assert loaded.windows[1].hits[-3:, 4:7].any()


def test_format_0_with_several_tracks_and_unknown_format():
    assert (loads(smf(track([tempo(0, 100)]), track(rock(4)), fmt=0)).windows[0].hits == rock_grid()).all()
    loaded = loads(smf(track(rock(4)), fmt=7))
    assert has(loaded.notices, "unknown format")


# ---------------------------------------------------------------------------------------------
# time


def shuffle(bars: int = 4, jitter: int = 0, seed: int = 0):
    """Kick and snare on the beats, hats on every 8th-note triplet (a shuffle), optionally humanised."""
    rng = np.random.default_rng(seed)
    events = []
    for bar in range(bars):
        for beat in range(4):
            base = bar * BAR + beat * PPQ
            events += note(base, KICK if beat % 2 == 0 else SNARE)
            for third in range(3):
                events += note(base + third * PPQ // 3 + int(rng.integers(-jitter, jitter + 1)), HAT, length=20)
    return events


def humanised_rock(bars: int = 4, spread: int = 25, seed: int = 0, channel: int = 9):
    rng = np.random.default_rng(seed)
    return [(max(t + int(rng.integers(-spread, spread + 1)), 0) if raw[0] & 0xF0 == 0x90 else t + spread + 1, raw)
            for t, raw in rock(bars, channel)]


def test_triplet_feel_is_said_once():
    loaded = loads(smf(track(shuffle())))
    assert loaded.notices == ["This groove has a triplet feel; the model's grid is 16ths, so triplets were moved "
                              "to the nearest 16th."]
    assert has(loads(smf(track(shuffle(jitter=8)))).notices, "triplet feel")  # played, not programmed


def test_humanised_timing_snapped_to_the_grid_is_said():
    loaded = loads(smf(track(humanised_rock())))
    assert (loaded.windows[0].hits == rock_grid()).all()
    assert loaded.notices == ["The groove's microtiming was snapped to the 16th grid (its notes were played off "
                              "the grid)."]
    assert loads(smf(track(humanised_rock(spread=4)))).notices == []  # a few ticks off: on the grid


def test_twelve_eight_blues_is_read_as_four_four_triplets():
    """12/8: four dotted-quarter beats a bar; its 8ths (triplets) land on 16ths 0, 1 and 3 of each beat."""
    eighth = PPQ // 2
    events = [tempo(0, 90), meter(0, 12, 3)]  # 90 quarter notes a minute = 60 dotted quarters
    for bar in range(4):
        for e in range(12):
            events += note(bar * 12 * eighth + e * eighth, HAT, length=20)
        for e, pitch in ((0, KICK), (3, SNARE), (6, KICK), (9, SNARE)):
            events += note(bar * 12 * eighth + e * eighth, pitch, length=20)
    loaded = loads(smf(track(events)))
    assert len(loaded.windows) == 1 and loaded.windows[0].qpm == pytest.approx(60)
    expected = np.zeros((64, 9), dtype=bool)
    for bar in range(4):
        for beat in range(4):
            expected[bar * 16 + beat * 4 + np.array([0, 1, 3]), PITCH_TO_CLASS[HAT]] = True
            expected[bar * 16 + beat * 4, 0 if beat % 2 == 0 else 1] = True
    assert (loaded.windows[0].hits == expected).all()
    assert has(loaded.notices, "12/8, a triplet feel", "nearest 16th") and loaded.summary["meters"] == ["12/8"]
    slow = loads(smf(track([tempo(0, 24)] + events[1:])))  # 24 quarters = 16 dotted quarters a minute
    assert slow.windows[0].qpm == 20 and has(slow.notices, "(16 qpm) is out of range")


def test_gmd_performance_says_microtiming_and_grid_files_say_nothing(gmd):
    assert has(loads((gmd / GMD_BEAT).read_bytes()).notices, "microtiming was snapped")
    assert not has(loads(groove(8)).notices, "microtiming") and not has(loads(groove(8)).notices, "triplet")


def test_tempo_changes_do_not_move_the_grid():
    changes = [tempo(i * PPQ, 80 + 7 * i) for i in range(16)]
    loaded = loads(smf(track(changes + rock(4))))
    assert (loaded.windows[0].hits == rock_grid()).all() and has(loaded.notices, "tempo changes ignored")


def test_three_four_only_says_which_meter():
    events = [meter(0, 3, 2)] + [e for b in range(8) for s in (0, 4, 8) for e in note(b * 12 * STEP + s * STEP, KICK)]
    assert reason(smf(track(events))) == (
        "No 4/4 drum part: the drums are in 3/4 (bars 1-8); the model plays 4/4 grooves only.")


def test_three_four_then_four_four_uses_the_four_four_bars():
    waltz = [e for b in range(2) for s in (0, 4, 8) for e in note(b * 12 * STEP + s * STEP, KICK)]
    start = 2 * 12 * STEP
    loaded = loads(smf(track([meter(0, 3, 2), meter(start, 4, 2)] + waltz + rock(4, start=start))))
    assert len(loaded.windows) == 1 and (loaded.windows[0].hits == rock_grid()).all()
    assert loaded.windows[0].source == "x.mid bars 3-6"
    assert has(loaded.notices, "bars 1-2 (in 3/4) left out")


def test_pickup_bar_in_its_own_meter():
    pickup = note(0, SNARE) + note(2 * STEP, SNARE)
    loaded = loads(smf(track([meter(0, 1, 2), meter(PPQ, 4, 2)] + pickup + rock(4, start=PPQ))))
    assert (loaded.windows[0].hits == rock_grid()).all() and loaded.windows[0].source == "x.mid bars 1-4"
    assert has(loaded.notices, "pickup before bar 1", "1/4")


def test_pickup_notes_before_beat_1_of_a_short_loop():
    pickup = note(12 * STEP, SNARE) + note(14 * STEP, SNARE)
    loaded = loads(smf(track(pickup + rock(2, start=BAR))))
    assert (loaded.windows[0].hits == rock_grid()).all() and has(loaded.notices, "pickup")


def test_early_note_before_a_meter_change_lands_on_beat_1():
    waltz = [e for b in range(2) for s in (0, 4, 8) for e in note(b * 12 * STEP + s * STEP, KICK)]
    start = 2 * 12 * STEP
    events = [meter(0, 3, 2), meter(start, 4, 2)] + waltz + [e for e in rock(4, start=start) if e[0] != start]
    events += [(start - 20, bytes([0x99, KICK, 110])), (start - 20, bytes([0x99, HAT, 80]))]  # played 20 ticks early
    loaded = loads(smf(track(events)))
    assert loaded.windows[0].hits[0, 0] and loaded.windows[0].hits[0, 2]


def test_microtiming_rounds_to_the_nearest_step():
    events = [(max(t + (-25 if i % 2 else 25), 0), raw) for i, (t, raw) in enumerate(rock(4))
              if raw[0] & 0xF0 == 0x90]
    assert (loads(smf(track(events))).windows[0].hits == rock_grid()).all()


# ---------------------------------------------------------------------------------------------
# short and long inputs


def test_one_bar_loop_repeats():
    loaded = loads(smf(track(rock(1), end=BAR)))
    assert (loaded.windows[0].hits == rock_grid()).all() and has(loaded.notices, "1-bar loop", "repeated")
    assert loaded.windows[0].source == "x.mid bar 1 (completed to 4 bars)"


def test_two_bar_loop_repeats():
    loaded = loads(smf(track(rock(2, fill_last=True), end=2 * BAR)))
    grid = loaded.windows[0].hits
    assert (grid[:32] == grid[32:]).all() and grid[29, 4] and has(loaded.notices, "2-bar loop")


def test_three_bar_phrase_keeps_its_last_bar_last():
    loaded = loads(smf(track(rock(3, fill_last=True), end=3 * BAR)))
    grid = loaded.windows[0].hits
    assert (grid[16:32] == grid[32:48]).all() and grid[61:64, 4:7].any() and not grid[16:48, 4:7].any()
    assert has(loaded.notices, "3-bar phrase", "bar 2 twice")


def test_partial_last_bar_is_completed_from_the_bar_before():
    events = [e for e in rock(2) if e[0] < BAR + 8 * STEP]  # the file stops at beat 3 of bar 2
    loaded = loads(smf(track(events, end=BAR + 8 * STEP)))
    assert (loaded.windows[0].hits == rock_grid()).all() and has(loaded.notices, "ends at beat 3 of bar 2")


def test_two_beat_file_fills_a_bar():
    events = [e for e in rock(1) if e[0] < 8 * STEP]
    loaded = loads(smf(track(events, end=8 * STEP)))
    assert loaded.windows[0].hits[8, 0] and has(loaded.notices, "2 beats long")


def test_long_file_lists_windows_and_defaults_to_the_busiest():
    events = rock(8) + [e for s in range(16) for e in note(5 * BAR + s * STEP, 49)]  # crash 16ths in bar 6
    loaded = loads(smf(track(events)), "long.mid")
    assert [w.source for w in loaded.windows] == [f"long.mid bars {b}-{b + 3}" for b in range(1, 6)]
    assert loaded.default_index == 2 and loaded.summary["default_source"] == "long.mid bars 3-6"


def test_short_fragments_beside_a_long_passage_are_left_out():
    events = rock(1) + rock(4, start=3 * BAR)
    loaded = loads(smf(track(events)))
    assert len(loaded.windows) == 1 and has(loaded.notices, "1 passage shorter than 4 bars (bar 1) was left out")


# ---------------------------------------------------------------------------------------------
# the real corpus, prepare consistency and the CLI


def test_every_gmd_file_loads(gmd):
    """All 1,150 GMD files: 4/4 ones give windows, the 12 others a reason naming their meter."""
    rows = list(csv.DictReader((gmd / "info.csv").open()))
    assert len(rows) == 1150
    for row in rows:
        data = (gmd / row["midi_filename"]).read_bytes()
        if row["time_signature"] == "4-4":
            assert load_grooves(data, row["midi_filename"]).windows, row["midi_filename"]
        else:
            with pytest.raises(InputError, match=row["time_signature"].replace("-", "/")):
                load_grooves(data, row["midi_filename"])


def test_prepare_windows_unchanged_on_gmd(gmd):
    """``prepare``'s windows per split, as pinned with the mido-based reader this one replaced."""
    counts = {"train": 0, "validation": 0, "test": 0}
    for row in csv.DictReader((gmd / "info.csv").open()):
        counts[row["split"]] += len(file_windows((gmd / row["midi_filename"]).read_bytes()))
    assert counts == {"train": 13233, "validation": 1832, "test": 1768}


def inspect(*paths) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "musicvae.cli", "inspect", *map(str, paths)],
                          capture_output=True, text=True, timeout=120)


def test_cli_inspect_exit_codes(tmp_path):
    cases = {
        "ok.mid": (groove(8), 0, "5 usable 4-bar window(s)"),
        "loop.MID": (smf(track(rock(1), end=BAR)), 0, "1-bar loop"),
        "picture.mid": (b"\x89PNG\r\n\x1a\n" + bytes(32), 1, "This is a PNG image, not a MIDI file."),
        "cut.mid": (groove(4)[:30], 1, "truncated download?"),
        "piano": (smf(track(piano())), 1, "No drum notes: the file has piano on channel 1 only."),
    }
    for name, (data, code, words) in cases.items():
        (tmp_path / name).write_bytes(data)
        result = inspect(tmp_path / name)
        assert result.returncode == code, (name, result.stdout, result.stderr)
        assert words in result.stdout and "Traceback" not in result.stdout + result.stderr
        if code:
            assert len(result.stdout.strip().splitlines()) == 1
