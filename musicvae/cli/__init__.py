"""``musicvae`` command line: thin wrappers over the package, with Magenta's flag names.

One module per command; each registers its flags (``add_parser``) and does its work (``run``),
importing the engine inside ``run`` so that ``musicvae --help`` never loads torch.  Every error a
user can cause ends as one ``error:`` line and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys

from musicvae.cli import (
    bench,
    directions,
    export,
    generate,
    info,
    inspect,
    prepare,
    render,
    report,
    train,
)

COMMANDS = (prepare, train, generate, inspect, report, export, render, directions, info, bench)  # --help order


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="musicvae", description="Hierarchical MusicVAE for 4-bar drum grooves.")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if argv is None and args.command == "train":  # the real command line only, never a caller's argv
        train.reexec_with_jemalloc(sys.argv[1:])
    try:
        return args.run(args) or 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, RuntimeError) as error:  # our one-line errors (InputError, CheckpointError, AudioError)
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a file or folder that cannot be read or written (e.g. --output_dir)
        print(f"error: {os_error_sentence(error)}", file=sys.stderr)
        return 2
    except Exception as error:
        if type(error).__name__ != "SafetensorError":  # a bug: keep the traceback
            raise
        print(f"error: a weights file is damaged or incomplete ({error}).", file=sys.stderr)
        return 2


def os_error_sentence(error: OSError) -> str:
    """'PATH: Permission denied.' for a system error; our own OSErrors (no errno) as they are."""
    if error.strerror and error.filename is not None:
        paths = " -> ".join(str(p) for p in (error.filename, error.filename2) if p is not None)
        return f"{paths}: {error.strerror}."
    return str(error)
