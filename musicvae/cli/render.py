"""``musicvae render``: MIDI file -> WAV through FluidSynth, read by the app's own MIDI reader
(``musicvae.media.audio``)."""

from __future__ import annotations

from pathlib import Path

from musicvae.cli.common import positive_int


def add_parser(sub) -> None:
    p = sub.add_parser("render", help="MIDI file -> WAV through FluidSynth (the app's renderer)")
    p.add_argument("input", type=Path, help="a MIDI file")
    p.add_argument("output", type=Path, help="WAV to write (22.05 kHz mono 16-bit)")
    p.add_argument("--qpm", type=float, default=None, help="tempo (default: the file's first tempo)")
    p.add_argument("--repeats", type=positive_int, default=1)
    p.add_argument("--soundfont", type=Path, default=None, help="default: assets/soundfont/, then Debian's")
    p.add_argument("--sample_rate", type=positive_int, default=22050)
    p.set_defaults(run=run)


def run(args) -> int:
    """``musicvae render IN.mid OUT.wav [--qpm Q] [--repeats N] [--soundfont SF2] [--sample_rate R]``."""
    from musicvae.fileio import atomic_write_bytes
    from musicvae.media.audio import SAMPLE_RATE, DrumSynth, decode_wav, default_synth, render_midi

    try:
        data = Path(args.input).read_bytes()
    except OSError as error:
        raise FileNotFoundError(f"{args.input}: cannot read the file ({error.strerror})") from None
    synth = DrumSynth(args.soundfont, args.sample_rate) if (args.soundfont or args.sample_rate != SAMPLE_RATE) else None
    wav = render_midi(data, args.qpm, args.repeats, synth)
    out = atomic_write_bytes(args.output, wav)
    used = synth or default_synth()
    samples, rate = decode_wav(wav)
    print(f"{out}: {len(samples) / rate:.1f} s, {used.description}")
    return 0
