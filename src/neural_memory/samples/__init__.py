"""Sample images shipped with the package (see README.md in this folder)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def sample_path(name: str = "parrots.png") -> Path:
    """Path of a bundled sample image.

    >>> sample_path().name
    'parrots.png'
    """
    path = Path(str(files(__name__) / name))
    if not path.is_file():
        raise FileNotFoundError(f"no bundled sample named {name!r}")
    return path
