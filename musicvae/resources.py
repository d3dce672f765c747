"""Where the shipped files are: the models (``checkpoints/``) and the assets (``assets/``: presets,
the drum soundfont).

In a clone (or an editable install) they are the repository's own folders beside the package.  A
non-editable ``pip install .`` copies both into the package as ``musicvae/_bundled/`` (see
``setup.py``), so the installed package finds them without the clone.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
BUNDLED = PACKAGE / "_bundled"


def shipped(name: str) -> Path:
    """The shipped folder ``name`` (``checkpoints`` or ``assets``): the clone's, else the installed copy."""
    in_clone = PACKAGE.parent / name
    if in_clone.is_dir() or not (BUNDLED / name).is_dir():
        return in_clone
    return BUNDLED / name
