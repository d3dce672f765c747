"""The offline MIDI -> WAV render of ``musicvae render``: midi2audio and the ``fluidsynth`` program,
with the same soundfont and the same reading of the file as the app (whose own renders stay
in-process, ``audio.py``: a reused synth is ~7x faster than a program start per render).

The file is read by the app's MIDI reader (``audio.midi_events``: cut downloads, RIFF wrappers, junk
before the header), written again as a plain one-track MIDI file in a temporary folder and rendered
by ``midi2audio.FluidSynth(soundfont, rate).midi_to_audio``.  Each of midi2audio's pitfalls (see
``docs/platform.md``) is guarded:

- quiet default gain (the program's 0.2): the result is peak-normalised as the app's renders are;
- a soundfont path that does not exist makes fluidsynth fall back to another soundfont silently:
  the soundfont is resolved and loaded (with its drum kit) by :class:`audio.DrumSynth` first;
- a MIDI file that does not exist writes nothing: the input is read by us, the temporary file is ours;
- the program's exit status is ignored: the WAV it should have written is checked (exists, parses,
  has the expected length, is not silence) and anything else is one :class:`audio.AudioError`.

Reverb and chorus sends are set to 0 in the file (CC 91/93), as the app's synth has them off.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

import mido
import numpy as np

from musicvae.media import audio

TICKS_PER_BEAT = 960
SECONDS_PER_BEAT = 0.5  # the rewritten file's one tempo (120 qpm); event times are already in seconds


def events_midi(events: list[audio.NoteEvent], seconds: float) -> mido.MidiFile:
    """``events`` as a one-track MIDI file lasting ``seconds`` (its end-of-track marks the length)."""
    def tick(t: float) -> int:
        return int(round(t / SECONDS_PER_BEAT * TICKS_PER_BEAT))

    channels = sorted({e.channel for e in events} | {audio.DRUM_CHANNEL})
    timeline: list[tuple[int, int, mido.Message]] = []
    for channel in channels:
        timeline += [(0, 0, mido.Message("control_change", channel=channel, control=91, value=0)),
                     (0, 0, mido.Message("control_change", channel=channel, control=93, value=0))]
        program = next((e.program for e in events if e.channel == channel), 0)
        if channel != audio.DRUM_CHANNEL:
            timeline.append((0, 0, mido.Message("program_change", channel=channel, program=program)))
    for e in events:
        velocity = max(1, min(127, int(e.velocity)))
        on = tick(e.time)
        timeline.append((on, 2, mido.Message("note_on", channel=e.channel, note=e.pitch, velocity=velocity)))
        timeline.append((max(on + 1, tick(e.time + e.duration)), 1,
                         mido.Message("note_off", channel=e.channel, note=e.pitch, velocity=0)))
    timeline.sort(key=lambda item: (item[0], item[1]))
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=int(SECONDS_PER_BEAT * 1e6), time=0)])
    now = 0
    for at, _, message in timeline:
        track.append(message.copy(time=at - now))
        now = at
    track.append(mido.MetaMessage("end_of_track", time=max(tick(seconds) - now, 0)))
    midi = mido.MidiFile(ticks_per_beat=TICKS_PER_BEAT)
    midi.tracks.append(track)
    return midi


def render_midi_offline(midi_bytes: bytes, qpm: float | None = None, repeats: int = 1,
                        soundfont: str | Path | None = None, sample_rate: int = audio.SAMPLE_RATE,
                        synth: audio.DrumSynth | None = None) -> bytes:
    """MIDI file bytes -> WAV bytes (mono 16-bit, peak -1 dBFS) through midi2audio; as
    :func:`audio.render_midi`: ``qpm`` rescales the file's first tempo, the decay rings out.
    ``synth``: the soundfont and sample rate already resolved and loaded (else from ``soundfont`` and
    ``sample_rate``)."""
    from midi2audio import FluidSynth

    if synth is None:  # resolves and loads the soundfont: no silent fallback
        synth = audio.DrumSynth(soundfont, sample_rate)
    sample_rate = synth.sample_rate
    if shutil.which("fluidsynth") is None:
        raise audio.AudioError("The fluidsynth program is not installed: `sudo apt-get install fluidsynth`.")
    events, seconds = audio.midi_events(midi_bytes, qpm)
    if not events:
        raise ValueError("the MIDI file has no notes to render")
    repeats = max(1, repeats)
    every = [audio.NoteEvent(e.time + r * seconds, e.pitch, e.velocity, e.duration, e.channel, e.program)
             for r in range(repeats) for e in events]
    total = seconds * repeats + audio.TAIL_SECONDS
    expected = int(round(seconds * repeats * sample_rate)) + int(audio.TAIL_SECONDS * sample_rate)
    with tempfile.TemporaryDirectory(prefix="musicvae-render-") as folder:
        midi_path, wav_path = Path(folder) / "in.mid", Path(folder) / "out.wav"
        events_midi(every, total).save(str(midi_path))
        log = Path(folder) / "fluidsynth.log"
        with _output_to(log):  # the program's banner and warnings would fill the terminal
            FluidSynth(str(synth.soundfont), sample_rate).midi_to_audio(str(midi_path), str(wav_path))
        if not wav_path.is_file() or wav_path.stat().st_size <= 44:
            said = (log.read_text(errors="replace").strip().splitlines() or ["nothing"])[-1]
            raise audio.AudioError(f"The fluidsynth program wrote no audio (it said: {said}).")
        try:
            samples, rate = audio.decode_wav(wav_path.read_bytes())
        except (ValueError, EOFError, OSError) as error:
            raise audio.AudioError(f"The fluidsynth program wrote an unreadable WAV ({error}).") from None
    # fluidsynth plays ~2 s past the file's end (its voices ring out): longer is fine, shorter is not
    if rate != sample_rate or not expected - 0.25 * sample_rate <= len(samples) <= expected + 5 * sample_rate:
        raise audio.AudioError(f"The fluidsynth program wrote {len(samples) / rate:.2f} s at {rate} Hz, "
                               f"not the expected {expected / sample_rate:.2f} s at {sample_rate} Hz.")
    samples = np.pad(samples, (0, max(0, expected - len(samples))))[:expected]
    return audio.wav_bytes(audio._checked(samples, True, "this file"), sample_rate)


@contextlib.contextmanager
def _output_to(path: Path):
    """Point this process's stdout and stderr (file descriptors 1 and 2, which a child inherits) at ``path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(path, "wb") as log:
        try:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
