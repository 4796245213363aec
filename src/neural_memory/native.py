"""The native core: the C library in ``native/`` (see docs/C_API.md), built into
``neural_memory._native`` by ``pip install .``.

This module is the only place that touches the extension: it turns its status codes into the
package's exceptions and its output bytes into numpy arrays (without a copy). It parses
containers, decodes lossy payloads and codes lossless / near-lossless ones both ways; numba
is not needed for any of that (the numba engines stay as the tests' references).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn

import numpy as np

from neural_memory.errors import FormatError, MissingDependencyError, OptionError

try:
    from neural_memory import _native
except ImportError as exc:  # pragma: no cover - depends on the build
    raise MissingDependencyError(
        "the native core (neural_memory._native) is not built: reinstall the package "
        "(pip install . or pip install -e .; it needs a C compiler such as gcc)"
    ) from exc

#: Default limit on width * height of a decode (the stored and the requested size).
DEFAULT_MAX_PIXELS: int = _native.DEFAULT_MAX_PIXELS
#: Which sources the extension was built from (setup.py; tests compare it with the tree).
SOURCE_HASH: str = _native.SOURCE_HASH
VERSION: str = _native.VERSION


def _raise(exc: Exception) -> NoReturn:
    status, message = exc.args
    if status == _native.ERR_ARGUMENT:
        raise OptionError(message) from None
    if status == _native.ERR_MEMORY:
        raise MemoryError(message) from None
    if status == _native.ERR_LIMIT:
        raise FormatError(f"{message} (max_pixels)") from None
    raise FormatError(message) from None


def decode_lossy(
    payload: bytes,
    height: int,
    width: int,
    channels: int,
    size: tuple[int, int] | None = None,
    max_pixels: int | None = None,
) -> np.ndarray:
    """Decode a lossy engine payload to an (H', W', C) uint8 array in C.

    ``size=(W', H')`` renders at another size; ``max_pixels`` (default
    :data:`DEFAULT_MAX_PIXELS`) bounds both the stored and the output size.
    """
    out_w, out_h = (0, 0) if size is None else (int(size[0]), int(size[1]))
    if size is not None and not (out_w >= 1 and out_h >= 1):
        raise OptionError("requested output size out of range")
    limit = DEFAULT_MAX_PIXELS if max_pixels is None else int(max_pixels)
    if limit < 1:
        raise OptionError("max_pixels must be at least 1")
    if min(height, width, channels) < 0 or max(height, width, out_w, out_h) >= 1 << 32:
        raise FormatError("lossy payload: bad image size")
    try:
        raw = _native.lossy_decode(payload, height, width, channels, out_w, out_h, limit)
    except _native.Error as exc:
        _raise(exc)
    shape = (height, width, channels) if size is None else (out_h, out_w, channels)
    return np.frombuffer(raw, dtype=np.uint8).reshape(shape)


def encode_lossless(
    image: np.ndarray,
    bit_depth: int,
    near: int,
    progress: Callable[[int, int], None] | None = None,
) -> bytes:
    """Lossless / near-lossless payload of a checked (H, W, C) uint8 / uint16 image, in C;
    ``progress(rows_done, rows)`` is called every 16 rows (an exception in it stops the
    encode and propagates, as does Ctrl-C)."""
    height, width, channels = image.shape
    pixels = np.ascontiguousarray(image)
    try:
        return _native.lossless_encode(
            pixels, height, width, channels, bit_depth, near, progress=progress
        )
    except _native.Error as exc:
        _raise(exc)
    raise AssertionError("unreachable")


def decode_lossless(
    payload: bytes,
    height: int,
    width: int,
    channels: int,
    bit_depth: int,
    near: int,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Decode a lossless / near-lossless payload to an (H, W, C) uint8 / uint16 array in C."""
    try:
        raw = _native.lossless_decode(
            payload, height, width, channels, bit_depth, near, max_pixels, progress=progress
        )
    except _native.Error as exc:
        _raise(exc)
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    return np.frombuffer(raw, dtype=dtype).reshape(height, width, channels)


def parse(data: bytes) -> tuple:
    """Parse a container in C: ``(version, mode, width, height, channels, bit_depth, param,
    ((tag, offset, size), ...))``; raises FormatError exactly where ``container.unpack`` does."""
    try:
        return _native.parse(data)
    except _native.Error as exc:
        _raise(exc)
    raise AssertionError("unreachable")
