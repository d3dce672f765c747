"""``musicvae prepare``: MIDI folder -> 4-bar training windows per split (``musicvae.data``)."""

from __future__ import annotations

import json
from pathlib import Path

from musicvae.cli.common import positive_int


def add_parser(sub) -> None:
    p = sub.add_parser("prepare", help="MIDI folder -> 4-bar training windows per split")
    p.add_argument("--examples_path", required=True, type=Path, help="GMD-style folder (info.csv) or any MIDI tree")
    p.add_argument("--output_dir", required=True, type=Path)
    p.add_argument("--slice_bars", type=positive_int, default=4, help="window length in bars (default 4)")
    p.add_argument("--gap_bars", type=positive_int, default=1, help="empty bars that end a track (default 1)")
    p.add_argument("--max_bars", type=positive_int, default=100, help="truncate tracks to this many bars")
    p.add_argument("--max_tensors_per_notesequence", type=int, default=0,
                   help="cap on windows per file; 0 = no cap (default; Magenta uses 5)")
    p.add_argument("--num_workers", type=positive_int, default=None, help="processes (default: all cores)")
    p.add_argument("--seed", type=int, default=0, help="seed for the capped random choice")
    p.add_argument("--shard_windows", type=int, default=0,
                   help="write resumable shards of at most N windows (for big corpora; default 0 = one file "
                        "per split)")
    p.add_argument("--validation_fraction", type=float, default=0.0,
                   help="share of files put in validation by hash of their path, for folders without a split "
                        "column (default 0)")
    p.add_argument("--test_fraction", type=float, default=0.0, help="the same for test (default 0)")
    p.set_defaults(run=run)


def run(args) -> int:
    from musicvae.data.prepare import prepare
    from musicvae.data.sources import PrepareSettings

    settings = PrepareSettings(
        args.slice_bars, args.gap_bars, args.max_bars, args.max_tensors_per_notesequence, args.seed
    )
    counts = prepare(args.examples_path, args.output_dir, settings, args.num_workers, shard_windows=args.shard_windows,
                     validation_fraction=args.validation_fraction, test_fraction=args.test_fraction)
    manifest = json.loads((args.output_dir / "manifest.json").read_text())
    rejected = manifest.get("rejected_count", len(manifest.get("rejected", {})))
    if rejected:
        where = args.output_dir / manifest.get("rejected_log", "manifest.json")
        print(f"{rejected} files gave no window (reasons in {where})")
    print(f"windows: train={counts['train']} validation={counts['validation']} test={counts['test']}")
    return 0
