"""Drum audio: FluidSynth through ``pyfluidsynth`` with one reusable synth, WAV bytes out.

Design choices (measured, see ``docs/platform.md``):
- one ``fluidsynth.Synth`` per process, reused under a lock (loading FluidR3 costs ~110 ms; a
  render of 4 bars ~30 ms); the drum kit is bank 128 on MIDI channel 10 (zero-based 9), forced
  for every drum note, because drums on another channel play a piano or nothing;
- the soundfont: ``$MUSICVAE_SOUNDFONT`` when set (it must exist: a wrong path is an error, never
  a fallback), else the repository's own drum kit in ``assets/soundfont/`` (a 3.4 MB extract of
  FluidR3_GM, ``scripts/make_soundfont.py``), else the Debian paths; if none exists, or it has no
  drum kit, :class:`AudioError` says so: never silent audio and never a silent fallback to another file;
- 22.05 kHz mono 16-bit WAV: a 4-bar groove at 120 qpm is 8 s = 350 kB (a 16-step morph
  ~5.6 MB instead of ~11 MB at 44.1 kHz stereo); drums lose little above 11 kHz;
- peak-normalised to -1 dBFS; the decay that rings past the end is folded onto the start so
  that the WAV loops seamlessly (``st.audio(loop=True)``).
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicvae.pattern import DRUM_CLASSES, STEPS_PER_QUARTER, DrumPattern
from musicvae.resources import shipped

ASSET_SOUNDFONTS = shipped("assets") / "soundfont"
SYSTEM_SOUNDFONTS = (
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    Path("/usr/share/sounds/sf2/default-GM.sf2"),
    Path("/usr/share/sounds/sf2/TimGM6mb.sf2"),
)
SOUNDFONT_ENV = "MUSICVAE_SOUNDFONT"
SAMPLE_RATE = 22050
DRUM_CHANNEL = 9  # MIDI channel 10
DRUM_BANK = 128
TAIL_SECONDS = 1.0  # rendered past the last step, then folded onto the start (loop) or kept
PEAK = 10 ** (-1.0 / 20)  # -1 dBFS
POLYPHONY = 40  # voices: enough for drums (the oldest ring-outs are stolen); 256 made dense grooves 3x slower
INSTALL_HINT = (
    "install one with `sudo apt-get install fluid-soundfont-gm`, "
    f"or put a General MIDI .sf2 file in {ASSET_SOUNDFONTS}"
)


class AudioError(RuntimeError):
    """Audio cannot be produced; the message says why and what to do."""


def soundfont_candidates() -> list[Path]:
    """Where soundfonts are looked for, in order: ``$MUSICVAE_SOUNDFONT``, ``assets/soundfont/``, Debian's."""
    found: list[Path] = []
    if os.environ.get(SOUNDFONT_ENV):
        found.append(Path(os.environ[SOUNDFONT_ENV]))
    if ASSET_SOUNDFONTS.is_dir():
        found += sorted(p for p in ASSET_SOUNDFONTS.iterdir() if p.suffix.lower() in (".sf2", ".sf3"))
    return found + list(SYSTEM_SOUNDFONTS)


def find_soundfont() -> Path:
    explicit = os.environ.get(SOUNDFONT_ENV)
    if explicit and not Path(explicit).is_file():
        raise AudioError(f"${SOUNDFONT_ENV} names {explicit}, which is not a file: set it to a .sf2 file or unset it.")
    for path in soundfont_candidates():
        if path.is_file():
            return path.resolve()
    searched = ", ".join(str(p) for p in soundfont_candidates())
    raise AudioError(f"No soundfont found (looked in {searched}): {INSTALL_HINT}.")


@dataclass(frozen=True)
class NoteEvent:
    time: float  # seconds
    pitch: int
    velocity: int
    duration: float
    channel: int = DRUM_CHANNEL
    program: int = 0


class DrumSynth:
    """One FluidSynth instance with a drum kit loaded; thread-safe, reusable."""

    def __init__(self, soundfont: str | Path | None = None, sample_rate: int = SAMPLE_RATE) -> None:
        try:
            # pyfluidsynth prints where it found the library to stdout when $CI is set: drop it, so
            # stdout stays machine-readable (`musicvae bench --json`) and stderr holds only our errors
            with contextlib.redirect_stdout(io.StringIO()):
                import fluidsynth
        except ImportError as error:  # pyfluidsynth present but libfluidsynth missing, or neither
            raise AudioError(
                f"FluidSynth is not available ({error}): `sudo apt-get install fluidsynth` and "
                "`pip install pyfluidsynth`."
            ) from None
        self.soundfont = Path(soundfont).resolve() if soundfont else find_soundfont()
        if not self.soundfont.is_file():  # an explicit path must exist: no fallback to another file
            raise AudioError(f"Soundfont {self.soundfont} does not exist: {INSTALL_HINT}.")
        self.sample_rate = int(sample_rate)
        self._lock = threading.Lock()
        self._synth = fluidsynth.Synth(
            gain=0.3,
            samplerate=float(self.sample_rate),
            **{"synth.reverb.active": 0, "synth.chorus.active": 0, "synth.polyphony": POLYPHONY},
        )
        self._sfid = self._synth.sfload(str(self.soundfont))
        if self._sfid == -1:
            raise AudioError(f"FluidSynth could not load the soundfont {self.soundfont} (not a valid .sf2/.sf3).")
        self.kit_name = self._synth.sfpreset_name(self._sfid, DRUM_BANK, 0)
        if self.kit_name is None:
            raise AudioError(f"Soundfont {self.soundfont.name} has no drum kit (bank 128, preset 0): {INSTALL_HINT}.")
        self._synth.program_select(DRUM_CHANNEL, self._sfid, DRUM_BANK, 0)

    @property
    def description(self) -> str:
        return f"{self.soundfont.name} ({self.kit_name}), {self.sample_rate / 1000:g} kHz mono"

    def render_events(self, events: list[NoteEvent], seconds: float, loop: bool = False) -> np.ndarray:
        """Float32 mono samples in [-1, 1] for ``seconds`` (+ the decay tail, folded if ``loop``)."""
        rate = self.sample_rate
        total = int(round(seconds * rate))
        tail = int(TAIL_SECONDS * rate)
        # (sample, order, kind, event): note-offs sort before note-ons at the same sample
        timeline = []
        for ev in events:
            on = min(max(int(round(ev.time * rate)), 0), total - 1)
            off = min(on + max(int(ev.duration * rate), 1), total + tail - 1)
            timeline.append((on, 1, ev))
            timeline.append((off, 0, ev))
        timeline.sort(key=lambda item: (item[0], item[1]))
        chunks: list[np.ndarray] = []
        with self._lock:
            synth = self._synth
            for channel in {ev.channel for ev in events if ev.channel != DRUM_CHANNEL}:
                program = next(ev.program for ev in events if ev.channel == channel)
                synth.program_select(channel, self._sfid, 0, program)
            synth.program_select(DRUM_CHANNEL, self._sfid, DRUM_BANK, 0)
            cursor = 0
            for sample, is_on, ev in timeline:
                if sample > cursor:
                    chunks.append(synth.get_samples(sample - cursor))
                    cursor = sample
                if is_on:
                    synth.noteon(ev.channel, ev.pitch, max(1, min(127, ev.velocity)))
                else:
                    synth.noteoff(ev.channel, ev.pitch)
            end = total + tail
            if end > cursor:
                chunks.append(synth.get_samples(end - cursor))
            for channel in range(16):
                synth.all_sounds_off(channel)
            synth.get_samples(256)  # flush whatever still rings so the next render starts clean
        stereo = np.concatenate(chunks).astype(np.float32).reshape(-1, 2) if chunks else np.zeros((end, 2), np.float32)
        mono = stereo.mean(axis=1) / 32768.0
        body = mono[:total].copy()
        if loop:
            body[: min(tail, total)] += mono[total : total + min(tail, total)]
            return body
        return mono


def pattern_events(pattern: DrumPattern, qpm: float, repeats: int = 1) -> tuple[list[NoteEvent], float]:
    """Note events of a pattern played ``repeats`` times at ``qpm`` and the total length in seconds.

    Each hit sounds at its own velocity and at its step plus its offset (the pattern's feel, see
    ``DrumPattern.offsets``); a hit played early on the very first step starts at 0, never before
    (as in the MIDI export); in a later repeat it sounds just before that repeat's downbeat."""
    step = 60.0 / float(qpm) / STEPS_PER_QUARTER
    velocities = pattern.velocity_grid()
    offsets = pattern.offset_grid()
    pitches = [pitches[0] for _, pitches in DRUM_CLASSES]
    steps, classes = np.nonzero(pattern.hits)
    events = []
    for rep in range(max(1, int(repeats))):
        offset = rep * pattern.num_steps
        for s, c in zip(steps.tolist(), classes.tolist(), strict=True):
            at = max(0.0, (offset + s + float(offsets[s, c])) * step)
            events.append(NoteEvent(at, pitches[c], int(velocities[s, c]), step))
    events.sort(key=lambda e: (e.time, e.pitch))
    return events, pattern.num_steps * max(1, int(repeats)) * step


def normalise(samples: np.ndarray, peak: float = PEAK) -> np.ndarray:
    top = float(np.max(np.abs(samples))) if samples.size else 0.0
    if top < 1e-6:
        return samples
    return samples * (peak / top)


def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """Float mono [-1, 1] -> 16-bit PCM WAV bytes."""
    pcm = np.clip(np.round(samples * 32767.0), -32768, 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(sample_rate)
        handle.writeframes(pcm.tobytes())
    return buffer.getvalue()


def decode_wav(data: bytes) -> tuple[np.ndarray, int]:
    """WAV bytes -> (float mono samples, sample rate); for tests and checks."""
    with wave.open(io.BytesIO(data), "rb") as handle:
        rate, width, channels = handle.getframerate(), handle.getsampwidth(), handle.getnchannels()
        frames = handle.readframes(handle.getnframes())
    if width != 2:
        raise ValueError(f"expected 16-bit WAV, got {8 * width}-bit")
    samples = np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0
    return samples.reshape(-1, channels).mean(axis=1), rate


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0


_DEFAULT: dict[int, DrumSynth] = {}
_DEFAULT_LOCK = threading.Lock()


def default_synth(sample_rate: int = SAMPLE_RATE) -> DrumSynth:
    """The process-wide synth (the app also wraps it in ``st.cache_resource``)."""
    with _DEFAULT_LOCK:
        if sample_rate not in _DEFAULT:
            _DEFAULT[sample_rate] = DrumSynth(sample_rate=sample_rate)
        return _DEFAULT[sample_rate]


def _checked(samples: np.ndarray, had_notes: bool, what: str) -> np.ndarray:
    if not had_notes:  # FluidSynth's 16-bit output carries dither: make true silence, do not amplify it
        return np.zeros_like(samples)
    if float(np.max(np.abs(samples))) < 1e-3:  # a few LSB of dither: never hand out silence for hits
        raise AudioError(f"FluidSynth rendered silence for {what}: the soundfont's drum kit does not play.")
    return normalise(samples)


def render_pattern(
    pattern: DrumPattern,
    qpm: float | None = None,
    repeats: int = 1,
    loop: bool = True,
    synth: DrumSynth | None = None,
) -> bytes:
    """A groove -> WAV bytes (mono 16-bit), ``repeats`` times at ``qpm`` (default: its own tempo).

    With ``loop`` the WAV lasts exactly the groove and wraps its decay onto the start, so a
    looping player has no gap; without it the last hits ring out.  A groove without hits gives
    silence of the right length (the app says so); a groove with hits never does.
    """
    synth = synth or default_synth()
    events, seconds = pattern_events(pattern, qpm or pattern.qpm, repeats)
    samples = synth.render_events(events, seconds, loop=loop)
    return wav_bytes(_checked(samples, bool(events), "this groove"), synth.sample_rate)


def render_sequence(patterns: list[DrumPattern], qpm: float, synth: DrumSynth | None = None) -> bytes:
    """Grooves played one after another (a whole interpolation) as one continuous WAV."""
    from musicvae.pattern import concatenate

    return render_pattern(concatenate(patterns), qpm, 1, loop=False, synth=synth)


def midi_events(midi_bytes: bytes, qpm: float | None = None) -> tuple[list[NoteEvent], float]:
    """Events of a MIDI file and its length in whole bars, read by the app's own reader.

    The file is read like an upload (``loader.read_midi``: the same repairs and limits, InputError
    with one sentence otherwise).  Drum channels (10, and channels a bank select sets to a drum
    kit, as the loader reads them) play the kit; other channels play their General MIDI program.
    Times follow the file's tempo map (120 qpm until its first tempo), rescaled so that the tempo
    at the start becomes ``qpm``; a note without a note-off lasts a 16th note.
    """
    from musicvae.midi.loader import read_midi

    parsed = read_midi(midi_bytes)
    tempos = [(t, q) for t, q in parsed.tempos]
    if not tempos or tempos[0][0] > 0:
        tempos.insert(0, (0, 120.0))  # the MIDI default before the first tempo event
    first_qpm = [q for t, q in tempos if t == 0][-1]  # the last tempo event at tick 0 wins
    scale = first_qpm / float(qpm) if qpm else 1.0
    at = np.array([t for t, _ in tempos], dtype=np.float64)
    seconds_per_tick = np.array([60.0 / q / parsed.ppq for _, q in tempos])
    seconds_at = np.concatenate([[0.0], np.cumsum(np.diff(at) * seconds_per_tick[:-1])])

    def seconds(ticks: np.ndarray) -> np.ndarray:
        index = np.searchsorted(at, ticks, side="right") - 1
        return seconds_at[index] + (ticks - at[index]) * seconds_per_tick[index]

    ticks = parsed.ticks.astype(np.float64)
    ends = ticks + np.where(parsed.durations >= 0, parsed.durations, parsed.ppq // 4)
    starts, stops = seconds(ticks), seconds(ends)
    drums = {DRUM_CHANNEL} | {c for _, c, value in parsed.bank_msb if value in (120, 127)}
    programs: dict[int, list[tuple[int, int]]] = {}
    for tick, channel, program in parsed.programs:
        programs.setdefault(channel, []).append((tick, program))
    events: list[NoteEvent] = []
    for i, (channel, pitch, velocity) in enumerate(zip(parsed.channels.tolist(), parsed.pitches.tolist(),
                                                      parsed.velocities.tolist(), strict=True)):
        start = max(float(starts[i]), 0.0) * scale
        duration = max(float(stops[i] - starts[i]), 0.01) * scale
        if channel in drums:
            events.append(NoteEvent(start, pitch, velocity, duration))
            continue
        tick = int(parsed.ticks[i])
        program = next((p for t, p in reversed(programs.get(channel, [])) if t <= tick), 0)
        events.append(NoteEvent(start, pitch, velocity, duration, channel, program))
    events.sort(key=lambda e: (e.time, e.pitch))
    length = max((e.time + e.duration for e in events), default=0.0)
    bar = 4 * 60.0 / (float(qpm) if qpm else first_qpm)  # 4/4 bars at the (first) tempo
    return events, np.ceil(length / bar - 1e-6) * bar  # whole bars, so repeats stay on the grid


def render_midi(midi_bytes: bytes, qpm: float | None = None, repeats: int = 1, synth: DrumSynth | None = None) -> bytes:
    """MIDI file bytes -> WAV bytes; ``qpm`` rescales the file's first tempo, the decay rings out."""
    synth = synth or default_synth()
    events, seconds = midi_events(midi_bytes, qpm)
    if not events:
        raise ValueError("the MIDI file has no notes to render")
    every = [NoteEvent(e.time + r * seconds, e.pitch, e.velocity, e.duration, e.channel, e.program)
             for r in range(max(1, repeats)) for e in events]
    samples = synth.render_events(every, seconds * max(1, repeats), loop=False)
    return wav_bytes(_checked(samples, True, "this file"), synth.sample_rate)
