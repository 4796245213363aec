"""Shared fixtures: small deterministic images, written to temporary files on demand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

DATA = Path(__file__).parent / "data"


def smooth_image(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """A photo-like test image: smooth gradients plus a little noise (seeded)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    planes = [
        128 + 90 * np.sin(x / (5.0 + c) + y / (7.0 + 2 * c)) + rng.normal(0, 4, (height, width))
        for c in range(channels)
    ]
    return np.clip(np.stack(planes, axis=2), 0, 255).astype(np.uint8)


@pytest.fixture
def rgb() -> np.ndarray:
    return smooth_image(24, 32, 3)


@pytest.fixture
def png_path(tmp_path: Path, rgb: np.ndarray) -> Path:
    path = tmp_path / "image.png"
    Image.fromarray(rgb).save(path)
    return path
