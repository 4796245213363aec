"""Published Kodak rate-distortion curves, used as extra BD-rate anchors.

The figures are dataset averages copied from public result files (see the ``sources`` and
``about`` fields of ``data/kodak_published.json``, copied from the project's shared anchors
file). They are only meaningful for the 24-image Kodak set, so the runner uses them only when
the image folder looks like Kodak (or when asked to).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path


@dataclass(frozen=True)
class PublishedCurve:
    """One published curve: dataset-mean bpp and RGB PSNR per rate point."""

    name: str
    bpp: tuple[float, ...]
    psnr: tuple[float, ...]
    source: str


def load_kodak_published() -> dict[str, PublishedCurve]:
    """Return the published Kodak curves keyed by short name (e.g. ``vtm``, ``coolchic5``)."""
    text = resources.files(__package__).joinpath("data/kodak_published.json").read_text()
    raw = json.loads(text)
    curves = {}
    for name, c in raw["curves"].items():
        curves[name] = PublishedCurve(
            name=name,
            bpp=tuple(c["bpp"]),
            psnr=tuple(c["psnr"]),
            source=raw["sources"].get(name, ""),
        )
    return curves


def kodak_published_about() -> str:
    """The provenance note of the published curves, for the report."""
    raw = json.loads(resources.files(__package__).joinpath("data/kodak_published.json").read_text())
    return raw["about"]


def looks_like_kodak(image_paths: list[Path]) -> bool:
    """True for the Kodak set: the anchors are averages over exactly these 24 images."""
    names = {p.stem for p in image_paths}
    return len(names) == 24 and all(n.startswith("kodim") for n in names)
