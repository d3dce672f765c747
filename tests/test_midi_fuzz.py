"""Property-based fuzzing of the loader: mutated real and built MIDI files never crash it.

Whatever the mutation (bit flips, truncations, insertions, deletions, chunk and block shuffles),
``load_grooves`` returns usable windows or raises :class:`InputError` with one sentence (never
:class:`InternalError`, the loader's wrapper around a bug of ours), and each call finishes
within the hypothesis deadline (a per-example time bound, not a flaky wall-clock assert).
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from conftest import GMD
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_loader import BAR, meta, meter, note, piano, rock, smf, tempo, track

from musicvae.midi.loader import load_grooves
from musicvae.midi.parse import InputError, InternalError

# Real GMD files of a few sizes (a 1-bar fill, a short beat, a long beat) and one built file that
# has the structures GMD lacks: several tracks, sysex, running status, meters, a piano part.
GMD_SEEDS = [
    "drummer1/session1/10_jazz-funk_116_fill_4-4.mid",
    "drummer1/eval_session/1_funk-groove1_138_beat_4-4.mid",
    "drummer1/session1/1_funk_80_beat_4-4.mid",
    "drummer1/session2/6_rock_102_beat_3-4.mid",
]
BUILT = smf(
    track([tempo(0, 90), meter(0, 4, 2), meta(0, 0x03, b"Conductor"), tempo(4 * BAR, 120), meter(8 * BAR, 3, 2)]),
    track(piano(0, 0, bars=2)),
    track([(0, b"\xf0\x03\x7e\x09\xf7"), (0, b"\xb9\x00\x78"), meta(0, 0x03, b"Drums")] + rock(6)
          + note(7 * BAR, 49) + [(BAR, b"\xf7\x02\xf8\xfa")]),
    track(rock(2, channel=2)),
)

COMPOUND = smf(track([tempo(0, 90), meter(0, 12, 3)] + rock(3, channel=0) + [meter(6 * BAR, 4, 2)]),  # 12/8, ch. 1
               track(rock(2, start=8 * BAR)))


def _seeds() -> list[bytes]:
    if not (GMD / "info.csv").exists():
        pytest.fail(f"the Groove MIDI Dataset is expected at {GMD} (the repository's data/groove/, or set GMD_DIR)")
    return [(GMD / rel).read_bytes() for rel in GMD_SEEDS] + [BUILT, COMPOUND]


SEEDS = _seeds()
FUZZ = settings(
    max_examples=120,
    deadline=timedelta(seconds=3),  # GMD-sized inputs load in ~10-80 ms; a hang or blow-up fails here
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
seed_index = st.integers(0, len(SEEDS) - 1)


def check(data: bytes, drum_channel: int | None = None) -> None:
    """The contract: windows with notices, or one InputError sentence; nothing else."""
    try:
        loaded = load_grooves(data, "fuzz.mid", drum_channel)
    except InternalError as error:  # one sentence for the musician, but a crash inside the loader
        raise AssertionError(f"internal error in the loader: {error}") from error.__cause__
    except InputError as error:
        message = str(error)
        assert message and "\n" not in message and len(message) < 300
        return
    assert loaded.windows and 0 <= loaded.default_index < len(loaded.windows)
    for window in loaded.windows:
        assert window.hits.shape == (64, 9) and window.velocities.shape == (64, 9)
        assert 0 < window.qpm <= 400
    assert all(isinstance(n, str) and "\n" not in n for n in loaded.notices)
    json.dumps(loaded.summary)  # `inspect --json` prints it


@FUZZ
@given(seed=seed_index, flips=st.lists(st.tuples(st.integers(0, 2**31), st.integers(1, 255)), min_size=1, max_size=40))
def test_byte_flips(seed, flips):
    data = bytearray(SEEDS[seed])
    for position, mask in flips:
        data[position % len(data)] ^= mask
    check(bytes(data))


@FUZZ
@given(seed=seed_index, channel=st.integers(1, 16), flips=st.lists(st.tuples(st.integers(0, 2**31),
                                                                           st.integers(1, 255)), max_size=20))
def test_any_drum_channel_of_flipped_files(seed, channel, flips):
    """``drum_channel`` (the app's "treat channel N as drums", ``--drum_channel``) on any file and channel."""
    data = bytearray(SEEDS[seed])
    for position, mask in flips:
        data[position % len(data)] ^= mask
    check(bytes(data), channel)


@FUZZ
@given(seed=seed_index, cut=st.floats(0, 1), flips=st.lists(st.integers(0, 2**31), max_size=3))
def test_truncations(seed, cut, flips):
    data = bytearray(SEEDS[seed][: int(cut * len(SEEDS[seed]))])
    for position in flips:
        if data:
            data[position % len(data)] ^= 0x80  # the high bit: status vs data confusion
    check(bytes(data))


@FUZZ
@given(seed=seed_index, inserts=st.lists(st.tuples(st.integers(0, 2**31), st.binary(min_size=1, max_size=12)),
                                         min_size=1, max_size=10))
def test_insertions(seed, inserts):
    data = SEEDS[seed]
    for position, blob in inserts:
        position %= len(data) + 1
        data = data[:position] + blob + data[position:]
    check(data)


@FUZZ
@given(seed=seed_index, cuts=st.lists(st.tuples(st.integers(0, 2**31), st.integers(1, 64)), min_size=1, max_size=8))
def test_deletions(seed, cuts):
    data = SEEDS[seed]
    for position, length in cuts:
        position %= len(data)
        data = data[:position] + data[position + length :]
    check(data)


def _chunks(data: bytes) -> list[bytes]:
    """Split at chunk boundaries (header and tracks), trusting the lengths of a valid file."""
    out, pos = [], 0
    while pos + 8 <= len(data):
        end = pos + 8 + int.from_bytes(data[pos + 4 : pos + 8], "big")
        out.append(data[pos:end])
        pos = end
    return out


@FUZZ
@given(seed=seed_index, rnd=st.randoms(use_true_random=False), keep_header=st.booleans())
def test_chunk_shuffles(seed, rnd, keep_header):
    chunks = _chunks(SEEDS[seed])
    body = chunks[1:] + rnd.sample(chunks, k=rnd.randint(0, len(chunks)))  # duplicates, header copies too
    rnd.shuffle(body)
    body = body[: rnd.randint(0, len(body))]
    check(b"".join(([chunks[0]] if keep_header else []) + body))


@FUZZ
@given(seed=seed_index, rnd=st.randoms(use_true_random=False), pieces=st.integers(2, 12))
def test_block_shuffles(seed, rnd, pieces):
    data = SEEDS[seed]
    bounds = sorted(rnd.randrange(len(data)) for _ in range(pieces - 1))
    blocks = [data[a:b] for a, b in zip([0, *bounds], [*bounds, len(data)])]
    head, rest = blocks[0], blocks[1:]
    rnd.shuffle(rest)
    check(head + b"".join(rest))


@FUZZ
@given(body=st.binary(max_size=600), fmt=st.integers(0, 3), division=st.integers(0, 0xFFFF),
       ntrks=st.integers(0, 5), length=st.one_of(st.none(), st.integers(0, 2**32 - 1)))
def test_random_track_bytes(body, fmt, division, ntrks, length):
    header = b"MThd\x00\x00\x00\x06" + fmt.to_bytes(2, "big") + ntrks.to_bytes(2, "big") + division.to_bytes(2, "big")
    size = len(body) if length is None else length
    check(header + b"MTrk" + size.to_bytes(4, "big") + body)


@settings(max_examples=60, deadline=timedelta(seconds=3))
@given(data=st.binary(max_size=300))
def test_any_bytes(data):
    check(data)
