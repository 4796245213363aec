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
from neural_memory.container import Container, Header, Mode, pack, unpack
from neural_memory.errors import FormatError, ImageError, OptionError
from neural_memory.images import bit_depth_of, load_image, save_image, to_array
from neural_memory.metrics import psnr

MODES = ("lossy", "lossless", "near-lossless")
PRESETS = ("fast", "default", "slow")
MAX_NEAR_8BIT = 127
MAX_NEAR_16BIT = 32767
MAX_OUTPUT_PIXELS = 1 << 28

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
        return 8 * self.file_bytes / (self.width * self.height)

    @property
    def bpsp(self) -> float:
        """Bits per sub-pixel (per sample), the lossless convention."""
        return self.bpp / self.channels


def _mode_name(mode: Mode) -> str:
    return {Mode.LOSSY: "lossy", Mode.LOSSLESS: "lossless", Mode.NEAR_LOSSLESS: "near-lossless"}[
        mode
    ]


def _resolve_mode(mode: str | None, near: int) -> str:
    if mode is None:
        return "near-lossless" if near else "lossy"
    if mode not in MODES:
        raise OptionError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if mode == "near-lossless" and near < 1:
        raise OptionError("near-lossless mode needs an error bound near >= 1")
    if mode != "near-lossless" and near:
        raise OptionError(f"an error bound (near={near}) only applies to near-lossless mode")
    return mode


def encode(
    image,
    *,
    mode: str | None = None,
    near: int = 0,
    lmbda: float | None = None,
    bpp: float | None = None,
    psnr: float | None = None,
    preset: str = "default",
    device: str = "cpu",
    seed: int = 0,
    threads: int | None = None,
    progress: Progress | None = None,
) -> bytes:
    """Compress an image into the bytes of a ``.nmem`` file.

    ``image`` is an ``(H, W[, C])`` uint8/uint16 array or a Pillow image. ``mode`` is
    ``"lossy"`` (the default), ``"lossless"`` or ``"near-lossless"`` (every sample within
    ``near`` of the original). Lossy rate control takes at most one of ``lmbda`` (the
    rate-distortion trade-off), ``bpp`` (a target size) or ``psnr`` (a target quality);
    with none, the preset's default lambda is used.
    """
    pixels = to_array(image)
    mode = _resolve_mode(mode, near)
    height, width, channels = pixels.shape
    depth = bit_depth_of(pixels)
    if mode == "lossy":
        sections = _encode_lossy(pixels, lmbda, bpp, psnr, preset, device, seed, threads, progress)
        header = Header(Mode.LOSSY, width, height, channels, depth)
    else:
        if any(v is not None for v in (lmbda, bpp, psnr)):
            raise OptionError("lambda, bpp and psnr targets apply to lossy mode only")
        limit = MAX_NEAR_16BIT if depth == 16 else MAX_NEAR_8BIT
        if near > limit:
            raise OptionError(f"near-lossless error bound must be at most {limit}, got {near}")
        from neural_memory.lossless import encode_lossless

        payload = encode_lossless(pixels, depth, near, _counter(progress))
        kind = Mode.NEAR_LOSSLESS if near else Mode.LOSSLESS
        header = Header(kind, width, height, channels, depth, param=near)
        sections = {"DATA": payload}
    return pack(header, sections)


def _counter(progress: Progress | None):
    if progress is None:
        return None
    return lambda done, total: progress(done, total, {})


def _encode_lossy(pixels, lmbda, bpp, target_psnr, preset, device, seed, threads, progress):
    if pixels.dtype != np.uint8:
        raise OptionError("lossy mode takes 8-bit images; use lossless or near-lossless for 16-bit")
    if sum(v is not None for v in (lmbda, bpp, target_psnr)) > 1:
        raise OptionError("give at most one of lambda, bpp and psnr")
    if preset not in PRESETS:
        raise OptionError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    for name, value in (("lambda", lmbda), ("bpp", bpp), ("psnr", target_psnr)):
        if value is not None and not value > 0:
            raise OptionError(f"{name} must be positive, got {value}")
    from neural_memory.lossy.config import LossyConfig
    from neural_memory.lossy.encoding.encoder import encode_lossy

    config = LossyConfig(
        lmbda=lmbda,
        target_bpp=bpp,
        target_psnr=target_psnr,
        preset=preset,
        device=device,
        seed=seed,
        threads=threads,
    )
    channels = pixels.shape[2]
    color = pixels[:, :, :3] if channels == 4 else pixels
    sections = {"LOSY": encode_lossy(color, config, progress)}
    if channels == 4:
        from neural_memory.lossless import encode_lossless

        sections["ALPH"] = encode_lossless(np.ascontiguousarray(pixels[:, :, 3:]), 8, 0)
    return sections


def decode(
    data: bytes,
    *,
    size: tuple[int, int] | None = None,
    scale: float | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """Rebuild the image stored in ``.nmem`` bytes as an ``(H, W, C)`` array.

    ``size=(width, height)`` or ``scale`` render a lossy file at another resolution (the
    stored representation is a function of position, so it can be sampled on any grid).
    """
    container = unpack(data)
    header = container.header
    if header.mode == Mode.LOSSY:
        return _decode_lossy(container, _target_size(header, size, scale))
    if size is not None or scale is not None:
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


def _target_size(header: Header, size, scale) -> tuple[int, int] | None:
    if size is not None and scale is not None:
        raise OptionError("give either a size or a scale, not both")
    if scale is not None:
        if not scale > 0:
            raise OptionError(f"scale must be positive, got {scale}")
        size = (max(1, round(header.width * scale)), max(1, round(header.height * scale)))
    if size is None:
        return None
    width, height = (int(v) for v in size)
    if width < 1 or height < 1 or width * height > MAX_OUTPUT_PIXELS:
        raise OptionError(f"output size {width}x{height} is out of range")
    return width, height


def _decode_lossy(container: Container, size: tuple[int, int] | None) -> np.ndarray:
    from neural_memory.lossy.decoding.decoder import decode_lossy

    header = container.header
    if header.channels not in (1, 3, 4) or header.bit_depth != 8:
        raise FormatError("corrupted file: lossy files hold 8-bit gray, RGB or RGBA")
    color_channels = 3 if header.channels == 4 else header.channels
    color = decode_lossy(
        container.section("LOSY"), header.height, header.width, color_channels, size
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


def read_info(data: bytes) -> FileInfo:
    """Parse a file's header and section table (checks the checksum, decodes nothing).

    >>> import numpy as np
    >>> read_info(encode(np.zeros((2, 2), np.uint8), mode="lossless")).mode
    'lossless'
    """
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

    @property
    def bpp(self) -> float:
        return 8 * self.output_bytes / (self.width * self.height)

    @property
    def bpsp(self) -> float:
        return self.bpp / self.channels


def encode_file(
    source: str | os.PathLike,
    output: str | os.PathLike,
    *,
    force: bool = False,
    verify: bool = True,
    **options,
) -> EncodeReport:
    """Encode an image file into a ``.nmem`` file (atomically; never over the input).

    With ``verify`` the file is decoded again to report the real PSNR / max error.
    """
    source = Path(source)
    out = check_output_path(output, force=force, inputs=(source,))
    pixels = load_image(source)
    start = time.perf_counter()
    data = encode(pixels, **options)
    seconds = time.perf_counter() - start
    quality, max_error = None, 0
    if verify:
        decoded = decode(data)
        quality, max_error = psnr(pixels, decoded), _max_error(pixels, decoded)
    write_atomic(out, data)
    height, width, channels = pixels.shape
    return EncodeReport(
        source,
        out,
        source.stat().st_size,
        len(data),
        width,
        height,
        channels,
        read_info(data).mode,
        seconds,
        quality,
        max_error,
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
) -> np.ndarray:
    """Decode a ``.nmem`` file into an image file (format from the extension)."""
    source = Path(source)
    out = check_output_path(output, force=force, inputs=(source,))
    pixels = decode(read_nmem(source), size=size, scale=scale)
    save_image(out, pixels)
    return pixels


__all__ = [
    "EncodeReport",
    "FileInfo",
    "ImageError",
    "decode",
    "decode_file",
    "encode",
    "encode_file",
    "read_info",
    "read_nmem",
]
