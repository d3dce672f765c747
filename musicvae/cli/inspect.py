"""``musicvae inspect``: what the loader finds in MIDI files (``musicvae.midi.loader``)."""

from __future__ import annotations

import json
from pathlib import Path

from musicvae.cli.common import DRUM_CHANNEL_HELP, midi_channel


def add_parser(sub) -> None:
    p = sub.add_parser("inspect", help="what the loader finds in MIDI files")
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--json", action="store_true", help="one JSON object per file")
    p.add_argument("--drum_channel", type=midi_channel, default=None, help=DRUM_CHANNEL_HELP)
    p.set_defaults(run=run)


def run(args) -> int:
    from musicvae.midi.loader import InputError, load_grooves

    failures = 0
    for path in args.files:
        try:
            loaded = load_grooves(path.read_bytes(), path.name, args.drum_channel)
        except InputError as error:
            failures += 1
            _report(args, path, {"ok": False, "reason": str(error)}, f"{path}: {error}")
            continue
        except OSError as error:
            failures += 1
            _report(args, path, {"ok": False, "reason": error.strerror}, f"{path}: cannot read ({error.strerror}).")
            continue
        info = {"ok": True, **loaded.summary, "notices": loaded.notices,
                "window_list": [
                    {"index": i, "source": w.source, "hits": w.num_hits} for i, w in enumerate(loaded.windows)
                ],
                "default_window": loaded.default_index}
        lines = [f"{path}: {loaded.summary['windows']} usable 4-bar window(s); tempo {loaded.summary['qpm']} qpm; "
                 f"meter {', '.join(loaded.summary['meters'])}; {loaded.summary['drum_notes']} drum notes kept "
                 f"(channel {', '.join(map(str, loaded.summary['drum_channels']))})"]
        lines += [f"  note: {n}" for n in loaded.notices]
        lines += [f"  [{w['index']}] {w['source']} ({w['hits']} hits)" for w in info["window_list"][:50]]
        if len(loaded.windows) > 50:
            lines.append(f"  ... {len(loaded.windows) - 50} more")
        _report(args, path, info, "\n".join(lines))
    return 1 if failures else 0


def _report(args, path: Path, info: dict, text: str) -> None:
    print(json.dumps({"file": str(path), **info}) if args.json else text)
