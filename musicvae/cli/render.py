"""``musicvae render``: MIDI file -> WAV through midi2audio and the fluidsynth program, read by the app's
own MIDI reader, with the app's soundfont (``musicvae.media.offline``)."""

from __future__ import annotations

from pathlib import Path

from musicvae.cli.common import positive_int


def add_parser(sub) -> None:
    p = sub.add_parser("render", help="MIDI file -> WAV through FluidSynth (midi2audio)")
    p.add_argument("input", type=Path, help="a MIDI file")
    p.add_argument("output", type=Path, help="WAV to write (22.05 kHz mono 16-bit)")
    p.add_argument("--qpm", type=float, default=None, help="tempo (default: the file's first tempo)")
    p.add_argument("--repeats", type=positive_int, default=1)
    p.add_argument("--soundfont", type=Path, default=None,
                   help="default: $MUSICVAE_SOUNDFONT, else assets/soundfont/, else Debian's")
    p.add_argument("--sample_rate", type=positive_int, default=22050)
    p.set_defaults(run=run)


def run(args) -> int:
    """``musicvae render IN.mid OUT.wav [--qpm Q] [--repeats N] [--soundfont SF2] [--sample_rate R]``."""
    from musicvae.fileio import atomic_write_bytes
    from musicvae.media.audio import DrumSynth, decode_wav
    from musicvae.media.offline import render_midi_offline

    try:
        data = Path(args.input).read_bytes()
    except OSError as error:
        raise FileNotFoundError(f"{args.input}: cannot read the file ({error.strerror})") from None
    synth = DrumSynth(args.soundfont, args.sample_rate)  # loaded once: checks the soundfont, names the kit
    wav = render_midi_offline(data, args.qpm, args.repeats, synth=synth)
    out = atomic_write_bytes(args.output, wav)
    samples, rate = decode_wav(wav)
    print(f"{out}: {len(samples) / rate:.1f} s, {synth.description}, rendered by the fluidsynth program (midi2audio)")
    return 0
