"""What several commands' parsers share."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def midi_channel(text: str) -> int:
    """A MIDI channel as musicians count them, 1-16 (``--drum_channel``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a MIDI channel from 1 to 16, not {text!r}") from None
    if not 1 <= value <= 16:
        raise argparse.ArgumentTypeError(f"must be a MIDI channel from 1 to 16, not {value}")
    return value


DRUM_CHANNEL_HELP = ("read this MIDI channel (1-16) as the drums, e.g. 1 for an e-drum kit recorded on channel 1 "
                     "(default: channel 10, else a channel that looks like a drum part)")
