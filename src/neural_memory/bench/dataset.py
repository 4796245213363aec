"""The images a benchmark runs on: which files of a folder, read as 8-bit RGB."""

from __future__ import annotations

from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = {".png", ".ppm", ".bmp", ".tif", ".tiff"}


def find_images(
    images_dir: Path, limit: int | None = None, names: list[str] | None = None
) -> list[Path]:
    """Image files of the folder, sorted by name (so --limit is reproducible); ``names``
    (file names with or without extension) picks a subset, e.g. the four images of a target
    measured on part of a set, without a folder of links."""
    paths = sorted(
        p for p in Path(images_dir).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not paths:
        raise FileNotFoundError(f"no images in {images_dir}")
    if names:
        by_name = {n: p for p in paths for n in (p.name, p.stem)}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise FileNotFoundError(f"not in {images_dir}: {', '.join(missing)}")
        paths = sorted({by_name[n] for n in names})
    return paths[:limit] if limit else paths


def load_rgb(path: str | Path) -> np.ndarray:
    """Image as (H, W, 3) uint8; the benchmark is defined on 8-bit RGB."""
    from PIL import Image

    with Image.open(path) as im:
        return np.ascontiguousarray(np.asarray(im.convert("RGB")))
