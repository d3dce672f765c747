"""Atomic writes: a reader, a crash or ``kill -9`` sees the old file (or folder) or the new one, never half.

One way to do it for the whole package:

- :func:`atomic_write_bytes` / :func:`atomic_write_text`: the data goes to a temporary file in
  the same folder, is flushed and fsynced, then ``os.replace``-d over the target (and the folder
  is fsynced, so the rename itself survives a power cut);
- :func:`atomic_open`: the same for writers that stream into a handle (``np.savez``, a filter);
- :func:`atomic_folder` / :func:`replace_folder`: a folder written in a staging folder next to the
  target, then renamed into place; an existing target is renamed aside first and deleted only
  once the new folder is in place (put back if the rename fails).  POSIX has no atomic swap of
  two folders, so a crash in the instant between the two renames leaves the old folder under a
  ``.NAME.*.old`` name next to where it was: never a half-written folder under the real name.

Temporary names end in ``.tmp`` (files) or ``.tmp``/``.old`` (folders) and carry the process id
and a random token, so concurrent writers never collide and leftovers are easy to spot.
With ``durable=False`` nothing is fsynced (scratch output where a power cut does not matter).
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_open", "atomic_folder", "replace_folder"]


def _sibling(path: Path, suffix: str, hidden: bool = False) -> Path:
    name = f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}{suffix}"
    return path.with_name(("." if hidden else "") + name)


def fsync_path(path: Path) -> None:
    """fsync a file or a folder by path (folders: best effort, some file systems refuse)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        if not Path(path).is_dir():
            raise
    finally:
        os.close(fd)


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", *, durable: bool = True,
                encoding: str | None = None) -> Iterator[IO]:
    """A handle on a temporary file that replaces ``path`` when the block ends without an error.

    On an error the temporary file is deleted and ``path`` is left as it was."""
    if mode not in ("w", "wb", "wt"):
        raise ValueError(f"atomic_open writes whole files: mode 'w' or 'wb', not {mode!r}")
    path = Path(path)
    tmp = _sibling(path, ".tmp")
    if "b" not in mode and encoding is None:
        encoding = "utf-8"
    try:
        with open(tmp, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_path(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, durable: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_open(path, "wb", durable=durable) as handle:
        handle.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, *, durable: bool = True, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; returns the path."""
    with atomic_open(path, "w", durable=durable, encoding=encoding) as handle:
        handle.write(text)
    return Path(path)


def replace_folder(staged: str | os.PathLike, final: str | os.PathLike, *, durable: bool = True) -> Path:
    """Rename the fully written folder ``staged`` to ``final`` (same file system).

    An existing ``final`` is renamed aside and deleted only after the rename succeeded; if it
    fails, the old folder is put back and the error raised (``staged`` is left for the caller)."""
    staged, final = Path(staged), Path(final)
    if durable:
        for file in staged.rglob("*"):
            if file.is_file():
                fsync_path(file)
        fsync_path(staged)
    aside = None
    if final.exists():
        aside = _sibling(final, ".old", hidden=True)
        os.rename(final, aside)
    try:
        os.rename(staged, final)
    except BaseException:
        if aside is not None:
            os.rename(aside, final)
        raise
    if durable:
        fsync_path(final.parent)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
    return final


@contextmanager
def atomic_folder(final: str | os.PathLike, *, durable: bool = True) -> Iterator[Path]:
    """A fresh staging folder next to ``final``; when the block ends without an error it replaces
    ``final`` (:func:`replace_folder`), otherwise it is deleted and ``final`` is left as it was."""
    final = Path(final)
    staged = _sibling(final, ".tmp", hidden=True)
    staged.mkdir()
    try:
        yield staged
        replace_folder(staged, final, durable=durable)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
