"""The Pillow plugin: Image.open and Image.save on .nmem files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import neural_memory as nm
from conftest import smooth_image


@pytest.fixture(autouse=True)
def _registered() -> None:
    nm.register()  # explicit: importing neural_memory does not touch Pillow's registry


def test_save_and_open_lossless(tmp_path: Path) -> None:
    pixels = smooth_image(10, 14, 3)
    path = tmp_path / "x.nmem"
    Image.fromarray(pixels).save(path, lossless=True)
    with Image.open(path) as im:
        assert im.format == "NMEM" and im.mode == "RGB" and im.size == (14, 10)
        assert np.array_equal(np.asarray(im), pixels)
    assert nm.read_info(path.read_bytes()).mode == "lossless"


def test_near_lossless_gray_and_rgba(tmp_path: Path) -> None:
    gray = smooth_image(9, 11, 1)[:, :, 0]
    Image.fromarray(gray).save(tmp_path / "g.nmem", near_lossless=3)
    with Image.open(tmp_path / "g.nmem") as im:
        assert im.mode == "L" and im.info["near_lossless"] == 3
        assert np.abs(np.asarray(im).astype(int) - gray).max() <= 3
    rgba = smooth_image(9, 11, 4)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.nmem", lossless=True)
    with Image.open(tmp_path / "a.nmem") as im:
        assert im.mode == "RGBA" and np.array_equal(np.asarray(im), rgba)


def test_register_is_idempotent_and_extension_known() -> None:
    nm.register()
    nm.register()
    assert Image.registered_extensions()[".nmem"] == "NMEM"


def test_bad_quality_is_refused(tmp_path: Path) -> None:
    with pytest.raises(nm.OptionError, match="quality"):
        Image.fromarray(smooth_image(4, 4, 3)).save(tmp_path / "q.nmem", quality=150)
