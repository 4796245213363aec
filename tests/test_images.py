"""Image input/output: modes, bit depths, refusals, atomic writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from neural_memory import png
from neural_memory.errors import ImageError, OutputError
from neural_memory.images import load_image, save_image, to_array


@pytest.mark.parametrize(
    ("mode", "channels"), [("L", 1), ("RGB", 3), ("RGBA", 4), ("1", 1), ("LA", 4), ("P", 3)]
)
def test_modes_load_as_hwc_uint8(tmp_path: Path, mode: str, channels: int) -> None:
    path = tmp_path / "x.png"
    Image.new(mode, (5, 3)).save(path)
    array = load_image(path)
    assert array.shape == (3, 5, channels)
    assert array.dtype == np.uint8


def test_16bit_gray_and_colour_png_keep_all_bits(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    colour = rng.integers(0, 65536, (4, 6, 3), dtype=np.uint16)
    path = tmp_path / "c16.png"
    path.write_bytes(png.png16_bytes(colour))
    assert np.array_equal(load_image(path), colour)
    gray = colour[:, :, :1].copy()
    save_image(tmp_path / "g16.png", gray)
    assert np.array_equal(load_image(tmp_path / "g16.png"), gray)
    save_image(tmp_path / "c16-out.png", colour)
    assert np.array_equal(load_image(tmp_path / "c16-out.png"), colour)


def test_unsupported_and_damaged_inputs_are_image_errors(tmp_path: Path) -> None:
    cmyk = tmp_path / "cmyk.tif"
    Image.new("CMYK", (4, 4)).save(cmyk)
    with pytest.raises(ImageError, match="convert it to RGB"):
        load_image(cmyk)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    with pytest.raises(ImageError, match="cannot read"):
        load_image(broken)
    with pytest.raises(ImageError, match="no such"):
        load_image(tmp_path / "missing.png")


def test_array_checks() -> None:
    assert to_array(np.zeros((2, 2), np.uint8)).shape == (2, 2, 1)
    with pytest.raises(ImageError, match="float"):
        to_array(np.zeros((2, 2, 3), np.float32))
    with pytest.raises(ImageError, match="empty"):
        to_array(np.zeros((0, 2, 3), np.uint8))


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    save_image(tmp_path / "a.png", np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(OutputError):
        save_image(tmp_path / "b.unknown-extension", np.zeros((2, 2, 3), np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_a_signal_during_the_temporary_files_creation_leaves_nothing(tmp_path, monkeypatch):
    """A batch worker's SIGTERM handler removes the temporary files of writes in progress
    (remove_partial_files) and exits; it may run right after the temporary file is created,
    so the file must already be listed then."""
    import os

    from neural_memory import atomic

    real_open = os.open

    def open_then_signal(*args, **kwargs):
        os.close(real_open(*args, **kwargs))
        atomic.remove_partial_files()  # what the handler does, before it exits
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "open", open_then_signal)
    with pytest.raises(KeyboardInterrupt):
        atomic.write_atomic(tmp_path / "b.bin", b"x")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_outputs_get_the_usual_file_mode(tmp_path: Path) -> None:
    """The temporary file behind an atomic write is private (0600); the result must have
    the mode a plain open() gives under the process umask, like any other tool's output."""
    import os

    from neural_memory.atomic import write_atomic

    old = os.umask(0o022)
    try:
        save_image(tmp_path / "a.png", np.zeros((2, 2, 3), np.uint8))
        write_atomic(tmp_path / "b.bin", b"x")
    finally:
        os.umask(old)
    for name in ("a.png", "b.bin"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644
