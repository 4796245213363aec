"""The public Python API: ``encode``, ``decode``, ``read_info`` and path helpers.

One entry point per direction, whatever the mode: the mode is recorded in the file, so
``decode`` needs no options. Engines are imported lazily, so decoding never imports
PyTorch and ``import neural_memory`` stays fast.

>>> import numpy as np, neural_memory as nm
>>> pixels = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
>>> data = nm.encode(pixels, mode="lossless")
>>> bool((nm.decode(data) == pixels).all())
True
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neural_memory.atomic import check_output_path, write_atomic
from neural_memory.container import Container, Header, Metadata, Mode, pack, unpack
from neural_memory.errors import FormatError, ImageError, OptionError
from neural_memory.images import (
    bit_depth_of,
    check_output_format,
    load_image_with_info,
    metadata_dropped,
    metadata_of,
    save_image,
    to_array,
)
from neural_memory.metrics import bits_per_pixel, bits_per_sample, psnr
from neural_memory.options import LOSSY, DecodeOptions, EncodeOptions

Progress = Callable[[int, int, dict], None]


@dataclass(frozen=True)
class FileInfo:
    """What ``neural-memory info`` prints: the header and the size of every section."""

    mode: str
    width: int
    height: int
    channels: int
    bit_depth: int
    near: int
    version: int
    file_bytes: int
    sections: dict[str, int]

    @property
    def bpp(self) -> float:
        """Bits per pixel on the whole file, the lossy convention."""
        return bits_per_pixel(self.file_bytes, self.width, self.height)

    @property
    def bpsp(self) -> float:
        """Bits per sub-pixel (per sample), the lossless convention."""
        return bits_per_sample(self.file_bytes, self.width, self.height, self.channels)


def _mode_name(mode: Mode) -> str:
    return {Mode.LOSSY: "lossy", Mode.LOSSLESS: "lossless", Mode.NEAR_LOSSLESS: "near-lossless"}[
        mode
    ]


def encode(
    image,
    options: EncodeOptions | None = None,
    *,
    metadata: Metadata | None = None,
    progress: Progress | None = None,
    **keywords,
) -> bytes:
    """Compress an image into the bytes of a ``.nmem`` file.

    ``image`` is an ``(H, W[, C])`` uint8/uint16 array or a Pillow image. The options are an
    :class:`~neural_memory.options.EncodeOptions` or its fields as keywords: ``mode`` is
    ``"lossy"`` (the default), ``"lossless"`` or ``"near-lossless"`` (every sample within
    ``near`` of the original). Lossy rate control takes at most one of ``lmbda`` (the
    rate-distortion trade-off), ``bpp`` (a target size) or ``psnr`` (a target quality);
    with none, a default lambda; or ``quality`` 0-100. ``preset`` (fast, default, slow) sets
    the training length.

    ``metadata`` (a :class:`~neural_memory.container.Metadata`: ICC profile, EXIF, XMP) is
    stored beside the pixels; a Pillow image brings its own (``image.info``) unless
    ``metadata`` is given. ``strip=True`` stores none.
    """
    options = _encode_options(options, keywords)
    if metadata is None:
        metadata = _pillow_metadata(image)
    pixels = to_array(image)
    height, width, channels = pixels.shape
    depth = bit_depth_of(pixels)
    options.check_image(depth)
    if options.mode == LOSSY:
        sections = _encode_lossy(pixels, options, progress)
        header = Header(Mode.LOSSY, width, height, channels, depth)
    else:
        from neural_memory.lossless import encode_lossless

        payload = encode_lossless(pixels, depth, options.near, _counter(progress))
        kind = Mode.NEAR_LOSSLESS if options.near else Mode.LOSSLESS
        header = Header(kind, width, height, channels, depth, param=options.near)
        sections = {"DATA": payload}
    if metadata is not None and not options.strip:
        if not isinstance(metadata, Metadata):
            raise OptionError(f"metadata must be a Metadata, got {type(metadata).__name__}")
        sections.update(metadata.sections())
    return pack(header, sections)


def _pillow_metadata(image) -> Metadata | None:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a hard dependency
        return None
    return metadata_of(image) if isinstance(image, Image.Image) else None


def _encode_options(options: EncodeOptions | None, keywords: dict) -> EncodeOptions:
    if options is None:
        return EncodeOptions.from_keywords(**keywords)
    if keywords:
        raise OptionError(f"give options or keywords, not both (got {', '.join(keywords)})")
    if not isinstance(options, EncodeOptions):
        raise OptionError(f"options must be an EncodeOptions, got {type(options).__name__}")
    return options


def _counter(progress: Progress | None):
    if progress is None:
        return None
    return lambda done, total: progress(done, total, {})


def _encode_lossy(pixels: np.ndarray, options: EncodeOptions, progress: Progress | None):
    from neural_memory.lossy.encoding.encoder import encode_lossy

    channels = pixels.shape[2]
    color = pixels[:, :, :3] if channels == 4 else pixels
    sections = {"LOSY": encode_lossy(color, options, progress)}
    if channels == 4:
        from neural_memory.lossless import encode_lossless

        sections["ALPH"] = encode_lossless(np.ascontiguousarray(pixels[:, :, 3:]), 8, 0)
    return sections


def decode(
    data: bytes | str | os.PathLike,
    *,
    size: tuple[int, int] | None = None,
    scale: float | None = None,
    max_pixels: int | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """Rebuild the image stored in ``.nmem`` bytes as an ``(H, W, C)`` array.

    ``size=(width, height)`` or ``scale`` render a lossy file at another resolution (the
    stored representation is a function of position, so it can be sampled on any grid).
    A file whose image has more than ``max_pixels`` pixels (default
    ``options.DEFAULT_MAX_DECODE_PIXELS``, 64 Mpixel) is refused before anything is decoded.
    ``data`` may also be the path of a ``.nmem`` file.
    """
    options = DecodeOptions(size=size, scale=scale, max_pixels=max_pixels)
    return _decode_container(unpack(_file_bytes(data)), options, progress)


def _decode_container(
    container: Container, options: DecodeOptions, progress: Progress | None = None
) -> np.ndarray:
    """:func:`decode` of a parsed file (decode_file parses once for pixels and metadata)."""
    header = container.header
    limit = options.pixel_limit
    if header.width * header.height > limit:
        raise FormatError(
            f"the image is {header.width}x{header.height}: more than the {limit} pixels this "
            "decode allows (raise it with max_pixels= / --max-pixels)"
        )
    if header.mode == Mode.LOSSY:
        size = options.output_size(header.width, header.height)
        if size is not None and size[0] * size[1] > limit:
            raise OptionError(
                f"rendering at {size[0]}x{size[1]} is more than the {limit} pixels this decode "
                "allows (raise it with max_pixels= / --max-pixels)"
            )
        return _decode_lossy(container, size, limit)
    if options.resizes:
        raise OptionError("decoding at another size works for lossy files only")
    from neural_memory.lossless import decode_lossless

    return decode_lossless(
        container.section("DATA"),
        header.height,
        header.width,
        header.channels,
        header.bit_depth,
        header.param,
        _counter(progress),
    )


def _file_bytes(data) -> bytes:
    """The bytes of a file given as bytes or as a path (a clear error for anything else)."""
    if isinstance(data, (str, os.PathLike)):
        return read_nmem(data)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise OptionError(
            f"expected the bytes or the path of a .nmem file, got {type(data).__name__}"
        )
    return bytes(data)


def read_metadata(data: bytes | str | os.PathLike) -> Metadata:
    """The ICC profile, EXIF and XMP stored in a file (bytes or path); empty when none."""
    return unpack(_file_bytes(data)).metadata


def _decode_lossy(
    container: Container, size: tuple[int, int] | None, max_pixels: int
) -> np.ndarray:
    from neural_memory.lossy.decoding.decoder import decode_lossy

    header = container.header
    if header.channels not in (1, 3, 4) or header.bit_depth != 8:
        raise FormatError("corrupted file: lossy files hold 8-bit gray, RGB or RGBA")
    color_channels = 3 if header.channels == 4 else header.channels
    color = decode_lossy(
        container.section("LOSY"), header.height, header.width, color_channels, size, max_pixels
    )
    if header.channels != 4:
        return color
    from neural_memory.lossless import decode_lossless

    alpha = decode_lossless(container.section("ALPH"), header.height, header.width, 1, 8, 0)
    if color.shape[:2] != alpha.shape[:2]:
        from PIL import Image

        resized = Image.fromarray(alpha[:, :, 0]).resize(
            (color.shape[1], color.shape[0]), Image.Resampling.LANCZOS
        )
        alpha = np.asarray(resized)[:, :, None]
    return np.concatenate([color, alpha], axis=2)


def read_info(data: bytes | str | os.PathLike) -> FileInfo:
    """Parse a file's header and section table (checks the checksum, decodes nothing).

    >>> import numpy as np
    >>> read_info(encode(np.zeros((2, 2), np.uint8), mode="lossless")).mode
    'lossless'
    """
    data = _file_bytes(data)
    container = unpack(data)
    h = container.header
    return FileInfo(
        mode=_mode_name(h.mode),
        width=h.width,
        height=h.height,
        channels=h.channels,
        bit_depth=h.bit_depth,
        near=h.param,
        version=h.version,
        file_bytes=len(data),
        sections={tag: len(payload) for tag, payload in container.sections.items()},
    )


@dataclass(frozen=True)
class EncodeReport:
    """The outcome of :func:`encode_file`, for summaries and tables."""

    source: Path
    output: Path
    input_bytes: int
    output_bytes: int
    width: int
    height: int
    channels: int
    mode: str
    seconds: float
    psnr: float | None
    max_error: int
    notes: tuple[str, ...] = ()
    sections: dict[str, int] | None = None

    @property
    def bpp(self) -> float:
        return bits_per_pixel(self.output_bytes, self.width, self.height)

    @property
    def bpsp(self) -> float:
        return bits_per_sample(self.output_bytes, self.width, self.height, self.channels)


def encode_file(
    source: str | os.PathLike,
    output: str | os.PathLike,
    *,
    force: bool = False,
    verify: bool = True,
    options: EncodeOptions | None = None,
    progress: Progress | None = None,
    warn: Callable[[str], None] | None = None,
    **keywords,
) -> EncodeReport:
    """Encode an image file into a ``.nmem`` file (atomically; never over the input).

    Options as for :func:`encode`; the file's ICC profile, EXIF and XMP are kept unless
    ``strip``. With ``verify`` the file is decoded again to report the real PSNR / max
    error. ``warn`` is called with each one-line note as soon as it is known (e.g. a JPEG
    input coded losslessly grows); the notes are also in the report.
    """
    options = _encode_options(options, keywords)
    source = Path(source)
    out = check_output_path(output, force=force, inputs=(source,))
    pixels, info = load_image_with_info(source, frame=options.frame)
    notes = []
    if info.format == "JPEG" and options.mode != LOSSY:
        notes.append(
            f"{source} is a JPEG: {options.mode} coding keeps its decoded pixels, JPEG's "
            "artefacts included, and the file will be larger than the JPEG "
            f"({source.stat().st_size:,} bytes); lossy mode (-q) gives a smaller one"
        )
    for note in notes:
        if warn is not None:
            warn(note)
    start = time.perf_counter()
    data = encode(pixels, options, metadata=info.metadata, progress=progress)
    seconds = time.perf_counter() - start
    quality, max_error = None, 0
    if verify:
        decoded = decode(data)
        quality, max_error = psnr(pixels, decoded), _max_error(pixels, decoded)
    write_atomic(out, data)
    height, width, channels = pixels.shape
    file_info = read_info(data)
    return EncodeReport(
        source,
        out,
        source.stat().st_size,
        len(data),
        width,
        height,
        channels,
        file_info.mode,
        seconds,
        quality,
        max_error,
        tuple(notes),
        file_info.sections,
    )


def _max_error(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int64) - b.astype(np.int64)).max()) if a.size else 0


def read_nmem(path: str | os.PathLike) -> bytes:
    """Read a ``.nmem`` file's bytes with a clear error if it is missing or unreadable."""
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise FormatError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise FormatError(f"expected a .nmem file, got a folder: {path}") from None
    except OSError as exc:
        raise FormatError(f"cannot read {path}: {exc.strerror or exc}") from None


def decode_file(
    source: str | os.PathLike,
    output: str | os.PathLike,
    *,
    force: bool = False,
    size: tuple[int, int] | None = None,
    scale: float | None = None,
    max_pixels: int | None = None,
    options: DecodeOptions | None = None,
    warn: Callable[[str], None] | None = None,
) -> np.ndarray:
    """Decode a ``.nmem`` file into an image file (format from the extension), with the
    file's ICC profile, EXIF and XMP where the format carries them (not with
    ``options.strip``); ``options.output_quality`` for lossy formats. ``warn`` is called with
    a one-line note when the format cannot carry the file's metadata."""
    if options is None:
        options = DecodeOptions(size=size, scale=scale, max_pixels=max_pixels)
    elif size is not None or scale is not None or max_pixels is not None:
        raise OptionError("give options or size / scale / max_pixels, not both")
    source = Path(source)
    out = check_output_path(output, force=force, inputs=(source,))
    check_output_format(out)
    container = unpack(read_nmem(source))
    pixels = _decode_container(container, options)
    metadata = None if options.strip else container.metadata
    if warn is not None and metadata is not None:
        reason = metadata_dropped(out, pixels, metadata)
        if reason:
            warn(f"{out}: {reason} (they stay in {source}; .png or .tiff keep them)")
    save_image(out, pixels, metadata=metadata, quality=options.output_quality)
    return pixels


__all__ = [
    "DecodeOptions",
    "EncodeOptions",
    "EncodeReport",
    "FileInfo",
    "ImageError",
    "Metadata",
    "decode",
    "decode_file",
    "encode",
    "encode_file",
    "read_info",
    "read_metadata",
    "read_nmem",
]
