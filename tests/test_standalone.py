"""A clone stands alone: its data, docs and code name nothing outside the repository."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TRACKED_TEXT = (".py", ".md", ".sh", ".toml", ".txt", ".cfg", "Makefile", "run")


def test_the_gmd_path_resolves_inside_the_repository_without_gmd_dir():
    env = {k: v for k, v in os.environ.items() if k != "GMD_DIR"}
    env["PYTHONPATH"] = str(REPO)
    out = subprocess.run([sys.executable, "-c", "from musicvae.data.sources import default_gmd_dir; "
                          "print(default_gmd_dir())"], env=env, cwd="/", capture_output=True, text=True, check=True)
    gmd = Path(out.stdout.strip())
    assert gmd.is_relative_to(REPO), f"GMD resolves outside the clone: {gmd}"
    assert (gmd / "info.csv").exists() and (gmd / "LICENSE").exists() and (gmd / "ATTRIBUTION.md").exists()
    assert len(list(gmd.rglob("*.mid"))) == 1150


def test_gmd_dir_still_overrides(monkeypatch, tmp_path):
    from musicvae.data.sources import default_gmd_dir
    monkeypatch.setenv("GMD_DIR", str(tmp_path))
    assert default_gmd_dir() == tmp_path


def test_the_dataset_is_tracked_and_nothing_cites_files_outside_the_clone():
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    assert "data/groove/info.csv" in files and "data/groove/ATTRIBUTION.md" in files
    offenders = []
    for name in files:
        if not name.endswith(TRACKED_TEXT) or name == "tests/test_standalone.py" or name.startswith("data/"):
            continue
        text = (REPO / name).read_text(errors="replace")
        offenders += [f"{name}: {bad}" for bad in ("shared/docs", "shared/data", "/work/") if bad in text]
    assert not offenders, offenders
