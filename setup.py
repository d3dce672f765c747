"""Copies the shipped models and assets into a non-editable install (musicvae/_bundled/), so that
``pip install .`` gives a package that finds them without the clone (``musicvae/resources.py``).
Everything else is in pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = ("checkpoints", "assets")


class BuildWithShippedFiles(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):  # an editable install reads the clone's folders
            return
        for name in SHIPPED:
            target = Path(self.build_lib) / "musicvae" / "_bundled" / name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(ROOT / name, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildWithShippedFiles})
