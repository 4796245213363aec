"""16-bit colour PNG through the package's own reader and writer (png.py): exact round trips,
agreement with an independent PNG codec (imagecodecs / libpng, where installed), interlaced
files, gray + alpha, metadata, and damaged files refused with one clear error."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest

from neural_memory import png
from neural_memory.container import Metadata
from neural_memory.errors import ImageError
from neural_memory.images import load_image, load_image_with_info, save_image


def _smooth(shape, seed=0):
    """Photograph-like 16-bit samples (gradients + noise), where every filter type wins on
    some rows, unlike pure noise."""
    rng = np.random.default_rng(seed)
    h, w, c = shape
    y, x = np.mgrid[0:h, 0:w]
    base = (x * 997 + y * 613)[:, :, None] + np.arange(c) * 4099
    return ((base + rng.integers(0, 300, shape)) % 65536).astype(np.uint16)


@pytest.mark.parametrize("shape", [(1, 1, 3), (2, 9, 4), (31, 17, 3), (64, 40, 4)])
def test_round_trip_through_files(tmp_path, shape):
    for image in (_smooth(shape), np.random.default_rng(1).integers(0, 65536, shape, np.uint16)):
        path = tmp_path / "x.png"
        save_image(path, image)
        assert png.is_16bit_colour(path.read_bytes())
        back = load_image(path)
        assert back.dtype == np.uint16 and np.array_equal(back, image)


def test_agrees_with_libpng():
    imagecodecs = pytest.importorskip("imagecodecs")
    for shape in [(5, 3, 3), (40, 33, 4)]:
        image = _smooth(shape, seed=2)
        ours = png.png16_bytes(image)
        assert np.array_equal(imagecodecs.png_decode(ours), image)
        assert np.array_equal(png.read_png16(imagecodecs.png_encode(image)), image)


def _interlaced(image: np.ndarray) -> bytes:
    """An Adam7 PNG of ``image`` built pass by pass (rows filtered with png.py's chooser)."""
    h, w, c = image.shape
    colour = {2: 4, 3: 2, 4: 6}[c]
    raw = b""
    for x0, y0, dx, dy in png._ADAM7:
        sub = image[y0::dy, x0::dx]
        if sub.size:
            rows = np.ascontiguousarray(sub.astype(">u2")).view(np.uint8).reshape(sub.shape[0], -1)
            raw += png._filter_rows(rows, np.zeros(rows.shape[1], np.uint8), 2 * c).tobytes()
    ihdr = struct.pack(">IIBBBBB", w, h, 16, colour, 0, 0, 1)
    return (
        png.SIGNATURE
        + png._chunk(b"IHDR", ihdr)
        + png._chunk(b"IDAT", zlib.compress(raw))
        + (png._chunk(b"IEND", b""))
    )


@pytest.mark.parametrize("shape", [(1, 1, 3), (3, 2, 4), (13, 11, 3), (17, 23, 4)])
def test_interlaced(shape):
    image = _smooth(shape, seed=3)
    data = _interlaced(image)
    assert np.array_equal(png.read_png16(data), image)
    imagecodecs = pytest.importorskip("imagecodecs")
    assert np.array_equal(imagecodecs.png_decode(data), image)


def test_gray_alpha_becomes_rgba(tmp_path):
    gray_alpha = _smooth((6, 5, 2), seed=4)
    path = tmp_path / "la.png"
    path.write_bytes(_interlaced(gray_alpha))
    back = load_image(path)
    assert back.shape == (6, 5, 4) and back.dtype == np.uint16
    assert np.array_equal(back[:, :, :3], np.repeat(gray_alpha[:, :, :1], 3, axis=2))
    assert np.array_equal(back[:, :, 3], gray_alpha[:, :, 1])


def test_metadata_kept(tmp_path):
    metadata = Metadata(
        icc=bytes(range(256)) * 2, exif=b"MM\x00*\x00\x00\x00\x08\x00\x00", xmp=b"<x/>"
    )
    image = _smooth((8, 8, 3))
    path = tmp_path / "m.png"
    save_image(path, image, metadata=metadata)
    back, info = load_image_with_info(path)
    assert np.array_equal(back, image) and info.bit_depth == 16
    assert info.metadata == metadata


def _corrupt_cases() -> dict[str, tuple[bytes, str]]:
    good = png.png16_bytes(_smooth((20, 20, 3)))
    idat = good.index(b"IDAT")
    flipped = bytearray(good)
    flipped[idat + 10] ^= 0x40
    raw = bytes([7]) + bytes(6 * 4)  # one 4-pixel row whose filter type byte is 7
    ihdr = png._chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 1, 16, 2, 0, 0, 0))
    bad_filter = png.SIGNATURE + ihdr + png._chunk(b"IDAT", zlib.compress(raw))
    garbage = png.SIGNATURE + ihdr + png._chunk(b"IDAT", b"not zlib data")
    short = png.SIGNATURE + ihdr + png._chunk(b"IDAT", zlib.compress(raw[:10]))
    big_ihdr = png._chunk(b"IHDR", struct.pack(">IIBBBBB", 70000, 1000, 16, 2, 0, 0, 0))
    body = good[8 + 25 : good.index(b"IEND") - 4]  # the chunks after IHDR, IEND excluded
    idat_chunk = png._chunk(b"IDAT", zlib.compress(raw))
    no_adler = png._chunk(b"IDAT", zlib.compress(raw)[:-4])
    text = png._chunk(b"tEXt", b"k\x00v")
    return {
        # Pillow reads the last IHDR (1x1 here), a reader that took the first would allocate
        # for 70000 x 1000: refused before anything is allocated
        "two headers": (
            png.SIGNATURE + big_ihdr + ihdr + idat_chunk + png._chunk(b"IEND", b""),
            "IHDR must be its first chunk",
        ),
        "split data": (
            png.SIGNATURE
            + ihdr
            + png._chunk(b"IDAT", b"")
            + text
            + idat_chunk
            + png._chunk(b"IEND", b""),
            "not consecutive",
        ),
        "unknown critical": (
            good[:33] + png._chunk(b"ZZZZ", b"") + body + png._chunk(b"IEND", b""),
            "unknown critical chunk",
        ),
        "no zlib end": (png.SIGNATURE + ihdr + no_adler + png._chunk(b"IEND", b""), "has no end"),
        "bad checksum": (bytes(flipped), "bad checksum in its IDAT chunk"),
        "truncated": (good[: len(good) // 2], "truncated PNG"),
        "bad filter": (bad_filter + png._chunk(b"IEND", b""), "unknown filter type"),
        "not zlib": (garbage + png._chunk(b"IEND", b""), "does not inflate"),
        "short data": (short + png._chunk(b"IEND", b""), "the header needs"),
    }


@pytest.mark.parametrize("case", list(_corrupt_cases()))
def test_damaged_files_are_refused(tmp_path, case):
    data, message = _corrupt_cases()[case]
    path = tmp_path / "bad.png"
    path.write_bytes(data)
    with pytest.raises(ImageError, match=message):
        load_image(path)


def test_cli_lossless_16bit_colour_round_trip_and_error(tmp_path):
    image = _smooth((12, 10, 3), seed=5)
    source, packed, out = tmp_path / "in.png", tmp_path / "in.nmem", tmp_path / "out.png"
    save_image(source, image)
    run = [sys.executable, "-m", "neural_memory"]
    subprocess.run(
        [*run, "encode", str(source), "-o", str(packed), "--lossless", "--quiet"], check=True
    )
    subprocess.run([*run, "decode", str(packed), "-o", str(out), "--quiet"], check=True)
    assert np.array_equal(load_image(out), image)
    source.write_bytes(_corrupt_cases()["bad checksum"][0])
    result = subprocess.run(
        [*run, "encode", str(source), "-o", str(tmp_path / "b.nmem"), "--lossless"],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "bad checksum" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_without_imagecodecs_jxl_and_tiff16_say_how_to_get_it(tmp_path, monkeypatch):
    """imagecodecs is optional (the formats extra): what needs it says so in one line, and
    16-bit colour PNG, the base install's 16-bit format, does not need it."""
    from neural_memory.errors import OutputError

    monkeypatch.setitem(sys.modules, "imagecodecs", None)  # import fails as if not installed
    image = _smooth((4, 4, 3))
    for name in ("x.jxl", "x.tiff"):
        with pytest.raises(OutputError, match=r"pip install 'neural-memory\[formats\]'"):
            save_image(tmp_path / name, image)
        assert not (tmp_path / name).exists()
    save_image(tmp_path / "x.png", image)
    assert np.array_equal(load_image(tmp_path / "x.png"), image)
