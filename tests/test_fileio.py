"""musicvae.fileio: whole files and folders replace the old ones, or nothing changes."""

from __future__ import annotations

import os

import numpy as np
import pytest

from musicvae import fileio


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((".tmp", ".old")))


def test_atomic_write_replaces_and_leaves_nothing_behind(tmp_path):
    path = tmp_path / "a.json"
    assert fileio.atomic_write_text(path, "first") == path and path.read_text() == "first"
    fileio.atomic_write_bytes(path, b"second", durable=False)
    assert path.read_bytes() == b"second" and leftovers(tmp_path) == []
    with fileio.atomic_open(tmp_path / "arrays.npz", "wb") as handle:
        np.savez_compressed(handle, x=np.arange(3))
    assert np.load(tmp_path / "arrays.npz")["x"].tolist() == [0, 1, 2] and leftovers(tmp_path) == []


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "state.json"
    path.write_text("old")
    with pytest.raises(TypeError):
        fileio.atomic_write_text(path, None)  # fails inside the write
    with pytest.raises(RuntimeError, match="half way"), fileio.atomic_open(path, "w") as handle:
        handle.write("new, but ")
        raise RuntimeError("half way")
    assert path.read_text() == "old" and leftovers(tmp_path) == []
    with pytest.raises(ValueError, match="whole files"), fileio.atomic_open(path, "a"):
        pass


def test_atomic_folder_replaces_an_existing_folder(tmp_path):
    final = tmp_path / "step-00000010"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with fileio.atomic_folder(final) as staged:
        assert staged.parent == tmp_path and not staged.name.startswith("step-")  # never taken for a checkpoint
        (staged / "new.txt").write_text("new")
        assert (final / "old.txt").exists()  # untouched while the new one is written
    assert [p.name for p in final.iterdir()] == ["new.txt"] and sorted(os.listdir(tmp_path)) == [final.name]


def test_a_failed_folder_keeps_the_old_one(tmp_path, monkeypatch):
    final = tmp_path / "model"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), fileio.atomic_folder(final) as staged:  # the writer fails
        (staged / "half.txt").write_text("half")
        raise RuntimeError("writer failed")
    assert [p.name for p in final.iterdir()] == ["old.txt"] and sorted(os.listdir(tmp_path)) == ["model"]

    real_rename = os.rename

    def rename(src, dst):  # moving the old folder aside works, moving the new one in does not
        if ".tmp" in str(src):
            raise OSError(28, "No space left on device")
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError, match="No space"), fileio.atomic_folder(final) as staged:
        (staged / "new.txt").write_text("new")
    assert [p.name for p in final.iterdir()] == ["old.txt"]  # put back
    assert sorted(os.listdir(tmp_path)) == ["model"]  # no staging or set-aside folder left
