"""The public Python API, through the lossless engine (fast) and option checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import neural_memory as nm
from neural_memory.errors import FormatError, OptionError, OutputError


def test_lossless_round_trip_and_info(rgb: np.ndarray) -> None:
    data = nm.encode(rgb, mode="lossless")
    assert np.array_equal(nm.decode(data), rgb)
    info = nm.read_info(data)
    assert (info.mode, info.width, info.height, info.channels) == ("lossless", 32, 24, 3)
    assert info.file_bytes == len(data)
    assert sum(info.sections.values()) < len(data)


def test_near_lossless_bound_is_recorded_and_kept(rgb: np.ndarray) -> None:
    data = nm.encode(rgb, mode="near-lossless", near=3)
    assert nm.read_info(data).near == 3
    error = np.abs(nm.decode(data).astype(int) - rgb.astype(int)).max()
    assert error <= 3


def test_pillow_image_input(rgb: np.ndarray) -> None:
    from PIL import Image

    data = nm.encode(Image.fromarray(rgb), mode="lossless")
    assert np.array_equal(nm.decode(data), rgb)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(mode="bogus"), "unknown mode"),
        (dict(mode="near-lossless"), "needs an error bound"),
        (dict(mode="lossless", near=2), "only applies"),
        (dict(mode="lossless", bpp=0.5), "lossy mode only"),
        (dict(mode="near-lossless", near=1000), "at most"),
        (dict(bpp=0.5, psnr=30.0), "at most one"),
        (dict(preset="turbo"), "unknown preset"),
        (dict(lmbda=-1.0), r"--lambda / lmbda= must be in \(0, 10\)"),
        (dict(mode="lossless", steps=5), "--steps / steps= applies to lossy mode only"),
        (dict(colour=1), "unknown encode option"),
    ],
)
def test_bad_options_raise_option_error(rgb: np.ndarray, options: dict, message: str) -> None:
    with pytest.raises(OptionError, match=message):
        nm.encode(rgb, **options)


def test_lossy_refuses_16_bit() -> None:
    with pytest.raises(OptionError, match="8-bit"):
        nm.encode(np.zeros((4, 4, 3), np.uint16))


def test_resizing_a_lossless_file_is_refused(rgb: np.ndarray) -> None:
    with pytest.raises(OptionError, match="lossy files only"):
        nm.decode(nm.encode(rgb, mode="lossless"), scale=2)


def test_decode_rejects_garbage() -> None:
    with pytest.raises(FormatError):
        nm.decode(b"not an nmem file at all")


def test_file_helpers_never_overwrite(png_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.nmem"
    report = nm.encode_file(png_path, out, mode="lossless")
    assert report.output_bytes == out.stat().st_size and report.max_error == 0
    with pytest.raises(OutputError, match="exists"):
        nm.encode_file(png_path, out, mode="lossless")
    with pytest.raises(OutputError, match="input"):
        nm.decode_file(out, out, force=True)
    nm.decode_file(out, tmp_path / "back.png")
    assert np.array_equal(nm.load_image(tmp_path / "back.png"), nm.load_image(png_path))
