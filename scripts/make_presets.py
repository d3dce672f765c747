#!/usr/bin/env python
"""Build the playground's preset library: a few dozen 4-bar GMD grooves across styles.

    .venv/bin/python scripts/make_presets.py [--groove data/groove] [--out assets/presets]

Picks beats (not fills) in 4/4 from GMD's train and validation splits, spread over the styles,
takes one typical 4-bar window of each (the window with the median number of hits, quantized to
16th notes, velocities kept) and writes it as a small MIDI file at the performance's tempo, plus
``presets.json`` (the index the app reads) and ``CREDITS.md`` (GMD is CC BY 4.0).
Deterministic: the same dataset gives the same files.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from collections import defaultdict
from pathlib import Path

from musicvae.data.sources import default_gmd_dir

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from musicvae.midi.loader import load_grooves  # noqa: E402
from musicvae.midi.parse import InputError  # noqa: E402

PER_STYLE = {"rock": 5, "funk": 4, "latin": 3, "jazz": 3, "hiphop": 3}  # others: 2, or all if fewer
CREDITS = """# Preset grooves: credits

The 4-bar grooves in this folder are excerpts (quantized to 16th notes, velocities kept) of
performances from the **Groove MIDI Dataset (GMD) v1.0.0** by Jon Gillick, Adam Roberts, Jesse
Engel, Mark Sandler and Ian Simon (Google Magenta, 2019): "Learning to Groove with Inverse
Sequence Transformations", ICML 2019, arXiv:1905.06118, https://magenta.tensorflow.org/datasets/groove

Licence: Creative Commons Attribution 4.0 International (CC BY 4.0),
https://creativecommons.org/licenses/by/4.0/ . Changes: a 4-bar window was cut from each
performance and quantized to a 16th-note grid; pitches were reduced to the 9 drum classes.

Only the dataset's `train` and `validation` splits were used; `presets.json` names the source
file, drummer and bars of every preset. Regenerate with `python scripts/make_presets.py`.
"""


def pick_rows(info: Path, seed: int = 0) -> list[dict]:
    with info.open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle)
                if r["split"] in ("train", "validation") and r["beat_type"] == "beat" and r["time_signature"] == "4-4"]
    by_style: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_style[row["style"].split("/")[0]].append(row)
    rng = random.Random(seed)
    chosen = []
    for style in sorted(by_style):
        candidates = sorted(by_style[style], key=lambda r: r["id"])
        rng.shuffle(candidates)
        chosen += [(style, r) for r in candidates[: PER_STYLE.get(style, 2) + 2]]  # spares for rejects
    return chosen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--groove", type=Path, default=default_gmd_dir())
    parser.add_argument("--out", type=Path, default=ROOT / "assets" / "presets")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for old in args.out.glob("*.mid"):
        old.unlink()
    counts: dict[str, int] = defaultdict(int)
    index = []
    for style, row in pick_rows(args.groove / "info.csv"):
        if counts[style] >= PER_STYLE.get(style, 2):
            continue
        try:
            loaded = load_grooves((args.groove / row["midi_filename"]).read_bytes(), Path(row["midi_filename"]).name)
        except InputError:
            continue
        windows = [w for w in loaded.windows if w.num_hits >= 24]
        if not windows:
            continue
        window = sorted(windows, key=lambda w: w.num_hits)[len(windows) // 2]
        counts[style] += 1
        bpm = int(round(float(row["bpm"])))
        sub = row["style"].split("/")[1] if "/" in row["style"] else ""
        file_name = f"{style}-{counts[style]}_{bpm}bpm.mid"
        (args.out / file_name).write_bytes(window.to_midi_bytes(bpm))
        index.append({
            "file": file_name,
            "name": f"{style} {counts[style]} ({sub}, {bpm} bpm)" if sub else f"{style} {counts[style]} ({bpm} bpm)",
            "style": row["style"],
            "bpm": bpm,
            "drummer": row["drummer"],
            "split": row["split"],
            "source": f"GMD {row['midi_filename']}, {window.source.split(' ', 1)[1]}",
            "hits": window.num_hits,
        })
    index.sort(key=lambda p: p["file"])
    (args.out / "presets.json").write_text(json.dumps(index, indent=1) + "\n")
    (args.out / "CREDITS.md").write_text(CREDITS)
    print(f"{len(index)} presets in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
