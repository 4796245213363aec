"""The public Python API: every mode through ``encode`` / ``decode`` (lossy with a few
training steps, so it stays fast), the option checks and the near-lossless bound."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import neural_memory as nm
from conftest import smooth_image
from neural_memory.container import Header, Mode, pack, unpack
from neural_memory.errors import FormatError, OptionError, OutputError
from neural_memory.metrics import psnr
from neural_memory.options import EncodeOptions, max_near

#: Training steps of the lossy tests: enough to learn a tiny image roughly, in about a second.
STEPS = 30


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


def test_lossy_round_trip_through_the_api(rgb: np.ndarray) -> None:
    data = nm.encode(rgb, lmbda=0.003, steps=STEPS, threads=1)
    info = nm.read_info(data)
    assert (info.mode, info.width, info.height, info.channels) == ("lossy", 32, 24, 3)
    assert list(info.sections) == ["LOSY"]
    decoded = nm.decode(data)
    assert decoded.shape == rgb.shape and decoded.dtype == np.uint8
    assert psnr(rgb, decoded) > 22
    assert nm.decode(data, scale=2).shape == (48, 64, 3)
    # the options object and the keywords are the same call
    again = nm.encode(rgb, EncodeOptions(lmbda=0.003, steps=STEPS, threads=1))
    assert again == data


def test_lossy_rgba_keeps_alpha_exactly() -> None:
    rgba = smooth_image(20, 18, 4)
    data = nm.encode(rgba, steps=STEPS, threads=1)
    assert list(nm.read_info(data).sections) == ["LOSY", "ALPH"]
    decoded = nm.decode(data)
    assert decoded.shape == rgba.shape
    assert np.array_equal(decoded[:, :, 3], rgba[:, :, 3])
    assert psnr(rgba[:, :, :3], decoded[:, :, :3]) > 20


def test_psnr_target_is_approached() -> None:
    image = smooth_image(24, 32, 3)
    low, high = (nm.encode(image, psnr=target, steps=150, threads=1) for target in (26, 31))
    achieved = [psnr(image, nm.decode(data)) for data in (low, high)]
    assert abs(achieved[1] - 31) < 2.0, achieved
    assert achieved[0] < achieved[1] and len(low) < len(high)


def test_lossy_encode_restores_torch_threads(rgb: np.ndarray) -> None:
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    nm.encode(rgb, steps=2, threads=1 if before > 1 else 2)
    assert torch.get_num_threads() == before


def test_near_lossless_bound_is_the_formats() -> None:
    """k up to 2^depth - 1 is written, decoded and kept; one more is refused by the options
    (naming the flag and the keyword) and by the container."""
    gray = smooth_image(12, 10, 1)
    data = nm.encode(gray, near=max_near(8))
    assert nm.read_info(data).near == 255
    assert np.abs(nm.decode(data).astype(int) - gray.astype(int)).max() <= 255
    deep = (gray.astype(np.uint16) * 257)[:6, :6]
    data16 = nm.encode(deep, near=1000)
    assert np.abs(nm.decode(data16).astype(int) - deep.astype(int)).max() <= 1000
    with pytest.raises(OptionError, match="--near-lossless K / near= must be at most 255"):
        nm.encode(gray, near=256)
    assert nm.encode(deep, near=256)  # fine for 16-bit
    with pytest.raises(OptionError, match=r"near= must be in \[0, 65535\]"):
        EncodeOptions(near=65536)
    header = Header(Mode.NEAR_LOSSLESS, 10, 12, 1, 8, param=256)
    with pytest.raises(FormatError, match="error bound"):
        unpack(pack(header, {"DATA": b"x"}))
