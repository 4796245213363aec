"""Image input and output: files and Pillow images to ``(H, W, C)`` arrays and back.

Arrays are ``uint8`` (8-bit) or ``uint16`` (16-bit) with C = 1 (gray), 3 (RGB) or 4 (RGBA).
Pillow reads most formats but silently truncates 16-bit colour PNG/TIFF to 8 bits, so 16-bit
colour PNG goes through the package's own reader and writer (png.py) and 16-bit colour TIFF and
JPEG XL through imagecodecs, an optional dependency (``pip install neural-memory[formats]``).
Conversions that would lose information (CMYK, float images) are refused with a message that
says what to do, never done silently.
"""

from __future__ import annotations

import os
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neural_memory import png
from neural_memory.atomic import write_atomic
from neural_memory.container import Metadata
from neural_memory.errors import ImageError, OutputError
from neural_memory.options import (
    DEFAULT_OUTPUT_QUALITY,
    LOSSY_OUTPUT_SUFFIXES,
    MAX_PIXELS,
    PALETTE_OUTPUT_SUFFIXES,
)
from neural_memory.png import check_size


@dataclass(frozen=True)
class ImageInfo:
    """What was read, for messages and summaries: the file's format and mode, the bit depth,
    how many frames it has (animations, multi-page files) and its metadata."""

    format: str
    mode: str
    bit_depth: int
    frames: int = 1
    metadata: Metadata = field(default_factory=Metadata)


_TIFF_XMP_TAG = 700


def metadata_of(im) -> Metadata:
    """The ICC profile, EXIF and XMP of an open Pillow image (as its file holds them; EXIF
    orientation included, never applied)."""
    info = im.info
    xmp = info.get("xmp") or info.get(png.XMP_KEY)
    if xmp is None and hasattr(im, "tag_v2"):
        xmp = im.tag_v2.get(_TIFF_XMP_TAG)
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8")
    exif = info.get("exif")
    if isinstance(exif, str):  # pragma: no cover - Pillow gives bytes
        exif = None
    return Metadata(icc=info.get("icc_profile"), exif=exif, xmp=xmp)


def pillow_metadata(metadata: Metadata) -> dict:
    """``save()`` keywords that write ``metadata`` with Pillow (PNG, TIFF, JPEG, WebP, AVIF)."""
    keywords: dict = {}
    if metadata.icc:
        keywords["icc_profile"] = metadata.icc
    if metadata.exif:
        keywords["exif"] = b"Exif\x00\x00" + metadata.exif
    if metadata.xmp:
        keywords["xmp"] = metadata.xmp
    return keywords


def to_array(image) -> np.ndarray:
    """Normalise a Pillow image or array-like into an ``(H, W, C)`` uint8/uint16 array.

    >>> to_array(np.zeros((2, 3), np.uint8)).shape
    (2, 3, 1)
    """
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a hard dependency
        Image = None
    if Image is not None and isinstance(image, Image.Image):
        return _pil_to_array(image)
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ImageError(
            f"expected an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) array, got {array.shape}"
        )
    if array.dtype not in (np.uint8, np.uint16):
        raise ImageError(f"expected uint8 or uint16 pixels, got {array.dtype}")
    check_size(array.shape[1], array.shape[0])
    return np.ascontiguousarray(array)


def bit_depth_of(array: np.ndarray) -> int:
    """8 for uint8 arrays, 16 for uint16 arrays."""
    return 16 if array.dtype == np.uint16 else 8


def load_image(path: str | os.PathLike, *, frame: int | None = None) -> np.ndarray:
    """Read an image file into an ``(H, W, C)`` array (see the module docstring)."""
    return load_image_with_info(path, frame=frame)[0]


def load_image_with_info(
    path: str | os.PathLike, *, frame: int | None = None
) -> tuple[np.ndarray, ImageInfo]:
    """Like :func:`load_image`, also returning the file's format, mode, frame count and
    metadata. A file of several frames (an animated GIF, PNG or WebP, a multi-page TIFF) is
    refused with its frame count unless ``frame`` picks one (from 0)."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise ImageError(f"no such image file: {path}")
    try:
        with _pixel_limit(Image), Image.open(path) as im:
            check_size(*im.size)
            fmt = im.format or "unknown"
            frames = int(getattr(im, "n_frames", 1) or 1)
            _seek(im, path, frames, frame)
            metadata = metadata_of(im)
            if fmt == "PNG" and _is_16bit_colour_png(path):
                if frames > 1:
                    raise ImageError(
                        f"{path} is an animated PNG with 16-bit colour, whose frames would be "
                        "read at 8 bits: save the frame as a PNG of its own first"
                    )
                array = png.read_png16(path.read_bytes())
                return array, ImageInfo(fmt, im.mode, 16, frames, metadata)
            colour = frames == 1 and im.mode in ("RGB", "RGBA")
            if colour and fmt == "TIFF" and _tiff_is_16bit(im):
                array = _read_16bit_tiff(path)
                return array, ImageInfo(fmt, im.mode, 16, frames, metadata)
            mode = im.mode
            array = _pil_to_array(im)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"image is too large: {path}") from None
    except Exception as exc:  # Pillow raises many types for damaged or unknown files
        raise ImageError(f"cannot read image {path}: {exc}") from None
    return array, ImageInfo(fmt, mode, bit_depth_of(array), frames, metadata)


def _seek(im, path: Path, frames: int, frame: int | None) -> None:
    """Go to the frame asked for; refuse a multi-frame file without one (encoding only its
    first frame would silently drop the rest)."""
    if frame is None:
        if frames > 1:
            raise ImageError(
                f"{path} has {frames} frames (an animation or a multi-page file); "
                f"pick one with --frame N / frame=N (0 to {frames - 1})"
            )
        return
    if not 0 <= frame < frames:
        raise ImageError(
            f"{path} has {frames} frame(s): --frame / frame= must be 0 to {frames - 1}"
        )
    if frame:
        im.seek(frame)


@contextmanager
def _pixel_limit(Image) -> Iterator[None]:
    """Pillow's decompression-bomb limit set to ours for one read, then put back (it is
    process-wide state that the caller's own Pillow use must not inherit); its warning band
    becomes an error so a huge image is refused before it is decoded."""
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def _pil_to_array(im) -> np.ndarray:
    mode = im.mode
    if mode == "1":
        im = im.convert("L")
    elif mode == "P" or mode == "PA":
        im = im.convert("RGBA" if "transparency" in im.info or mode == "PA" else "RGB")
    elif mode == "LA":
        im = im.convert("RGBA")  # gray + alpha is stored as RGBA, exactly
    elif mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(im, dtype=np.uint16)[:, :, None].copy()
    elif mode == "I":
        values = np.asarray(im)
        if values.min() < 0 or values.max() > 65535:
            raise ImageError("32-bit integer image with values outside 0..65535 is not supported")
        return values.astype(np.uint16)[:, :, None]
    elif mode == "YCbCr":
        im = im.convert("RGB")
    elif mode not in ("L", "RGB", "RGBA"):
        raise ImageError(
            f"unsupported image mode {mode!r}: convert it to RGB, RGBA or grayscale first"
        )
    array = np.asarray(im, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return np.ascontiguousarray(array)


def _is_16bit_colour_png(path: Path) -> bool:
    with open(path, "rb") as handle:
        return png.is_16bit_colour(handle.read(33))


def _tiff_is_16bit(im) -> bool:
    bits = im.tag_v2.get(258) if hasattr(im, "tag_v2") else None
    if isinstance(bits, tuple):
        return max(bits) > 8
    return bool(bits and bits > 8)


def _read_16bit_tiff(path: Path) -> np.ndarray:
    imagecodecs = _imagecodecs("reading a 16-bit colour TIFF", ImageError)
    if not imagecodecs.TIFF.available:
        raise ImageError("16-bit colour TIFF needs imagecodecs with TIFF support")
    array = imagecodecs.tiff_decode(path.read_bytes())
    return _as_hwc(array.astype(np.uint16, copy=False))


def _imagecodecs(purpose: str, error: type[Exception]):
    """imagecodecs, or ``error`` saying how to install it (an optional dependency: 80 MB, more
    than the rest of the base install; only 16-bit colour TIFF and JPEG XL need it)."""
    try:
        import imagecodecs
    except ImportError:
        raise error(
            f"{purpose} needs imagecodecs: pip install 'neural-memory[formats]' "
            "(or use PNG, which needs nothing more)"
        ) from None
    return imagecodecs


def _as_hwc(array: np.ndarray) -> np.ndarray:
    if array.ndim == 2:
        array = array[:, :, None]
    if array.shape[2] not in (1, 3, 4):
        raise ImageError(f"unsupported channel count {array.shape[2]}")
    return np.ascontiguousarray(array)


def to_pil(array: np.ndarray):
    """An ``(H, W, C)`` array as a Pillow image (16-bit colour has no Pillow mode)."""
    from PIL import Image

    channels = array.shape[2]
    if array.dtype == np.uint16:
        if channels != 1:
            raise ImageError("Pillow has no 16-bit colour mode; save 16-bit colour as PNG or TIFF")
        return Image.fromarray(array[:, :, 0])  # mode I;16
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[channels]
    return Image.fromarray(array[:, :, 0] if channels == 1 else array, mode)


def output_quality_note(path: str | os.PathLike, quality: int | None) -> str | None:
    """What a user should be told before ``path`` is written: the quality a lossy format gets
    when none was given (WebP is then written lossless, so it needs no note)."""
    suffix = Path(path).suffix.lower()
    if quality is None and suffix in LOSSY_OUTPUT_SUFFIXES and suffix != ".webp":
        return (
            f"writing {'JPEG' if suffix == '.jpg' else suffix[1:].upper()} at quality "
            f"{DEFAULT_OUTPUT_QUALITY} (a lossy format; "
            "choose with -q / --quality, or write .png for the exact pixels)"
        )
    return None


def metadata_dropped(path: str | os.PathLike, array: np.ndarray, metadata: Metadata) -> str | None:
    """Why ``metadata`` will not be in ``path`` (None when it will be, or there is none):
    JPEG XL and 16-bit colour TIFF go through imagecodecs, which writes none."""
    if not metadata:
        return None
    suffix = Path(path).suffix.lower()
    if suffix == ".jxl":
        return "this JPEG XL writer stores no colour profile, EXIF or XMP"
    if array.dtype == np.uint16 and array.shape[2] != 1 and suffix != ".png":
        return "16-bit colour is written without colour profile, EXIF or XMP (PNG keeps them)"
    return None


def check_output_format(path: str | os.PathLike, channels: int | None = None) -> None:
    """Refuse output formats that would change the pixels beyond a stated quality: GIF keeps
    a palette of 256 colours."""
    suffix = Path(path).suffix.lower()
    if suffix in PALETTE_OUTPUT_SUFFIXES:
        raise OutputError(
            f"{suffix} keeps at most 256 colours (the image would be quantised): write .png "
            "(exact), or .webp / .jxl"
        )


def save_image(
    path: str | os.PathLike,
    array: np.ndarray,
    *,
    metadata: Metadata | None = None,
    quality: int | None = None,
) -> None:
    """Write an array atomically; the format follows the file extension (PNG if none).

    ``metadata`` (ICC profile, EXIF, XMP) is written where the format carries it with
    Pillow: PNG, TIFF, JPEG, WebP, AVIF. ``quality`` (0-100) applies to lossy formats:
    JPEG and AVIF default to :data:`~neural_memory.options.DEFAULT_OUTPUT_QUALITY`, WebP is
    lossless without it, JPEG XL (``.jxl``, through imagecodecs) is lossless without it.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    check_output_format(path)
    metadata = metadata or Metadata()
    if suffix == ".jxl":
        write_atomic(path, _jxl_bytes(array, quality))
        return
    if array.dtype == np.uint16 and array.shape[2] != 1:
        if suffix == ".png":
            write_atomic(path, png.png16_bytes(array, metadata))
            return
        if suffix in (".tif", ".tiff"):
            imagecodecs = _imagecodecs("writing a 16-bit colour TIFF", OutputError)
            if not imagecodecs.TIFF.available:
                raise OutputError("16-bit colour TIFF needs imagecodecs with TIFF support")
            write_atomic(path, imagecodecs.tiff_encode(array))
            return
        raise OutputError(
            f"16-bit colour images can be written as .png, .tiff or .jxl, not {suffix!r}"
        )
    im = to_pil(array)
    fmt = None if suffix else "PNG"
    keywords = _format_keywords(suffix or ".png", metadata, quality)

    def write(tmp: Path) -> None:
        try:
            im.save(tmp, format=fmt, **keywords)
        except (KeyError, ValueError) as exc:
            raise OutputError(
                f"cannot write {path}: unknown or unsuitable format ({exc})"
            ) from None
        except (SyntaxError, TypeError, struct.error) as exc:  # a writer parsing the metadata
            if not metadata:
                raise
            raise OutputError(
                f"cannot write the stored metadata into {path} ({exc}); --strip / strip=True "
                "writes the image without it"
            ) from None

    write_atomic(path, write)


def _format_keywords(suffix: str, metadata: Metadata, quality: int | None) -> dict:
    """Pillow ``save()`` keywords for a format: metadata and quality."""
    keywords = pillow_metadata(metadata)
    if suffix == ".png" and metadata.xmp:
        from PIL import PngImagePlugin

        info = PngImagePlugin.PngInfo()
        info.add_itxt(png.XMP_KEY, metadata.xmp.decode("utf-8", "replace"))
        keywords["pnginfo"] = info
    if suffix in (".tif", ".tiff") and metadata.xmp:
        keywords["tiffinfo"] = {_TIFF_XMP_TAG: metadata.xmp}
    if suffix in (".jpg", ".jpeg", ".avif"):
        keywords["quality"] = DEFAULT_OUTPUT_QUALITY if quality is None else quality
    if suffix == ".webp":
        if quality is None:
            keywords["lossless"] = True
        else:
            keywords["quality"] = quality
    return keywords


def _jxl_bytes(array: np.ndarray, quality: int | None) -> bytes:
    imagecodecs = _imagecodecs("writing .jxl", OutputError)
    if not imagecodecs.JPEGXL.available:
        raise OutputError("writing .jxl needs imagecodecs with JPEG XL support")
    data = array[:, :, 0] if array.shape[2] == 1 else array
    if quality is None:
        return imagecodecs.jpegxl_encode(data, lossless=True)
    return imagecodecs.jpegxl_encode(data, level=quality)
