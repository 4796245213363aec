"""Validation, row-block driving, buffer management and the payload framing of the engine.

:func:`encode_lossless` and :func:`decode_lossless` run the C engine (native/src/lossless.c,
through :mod:`neural_memory.native`); :func:`encode_lossless_numba` and
:func:`decode_lossless_numba` run the numba engine of this package, the reference the C one
is tested against byte for byte (tests/test_native_lossless.py). The numba modules are
imported only by the reference functions, so coding with the C engine needs no JIT.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import FormatError, OptionError
from ..options import MAX_PIXELS, max_near

ENGINE_VERSION = 3
ROW_BLOCK = 16

Progress = Callable[[int, int], None] | None


def _check_params(height: int, width: int, channels: int, bit_depth: int, near: int) -> int:
    """Validate the shape/depth/near combination; return the maximum sample value."""
    if bit_depth not in (8, 16):
        raise OptionError(f"bit depth must be 8 or 16, got {bit_depth}")
    if channels not in (1, 3, 4):
        raise OptionError(f"channels must be 1, 3 or 4, got {channels}")
    if height < 1 or width < 1 or height * width > MAX_PIXELS:
        raise OptionError(f"unsupported image size {height}x{width}x{channels}")
    limit = max_near(bit_depth)
    if not isinstance(near, (int, np.integer)) or near < 0 or near > limit:
        raise OptionError(f"near must be an integer in [0, {limit}] for {bit_depth}-bit images")
    return (1 << bit_depth) - 1


def _check_image(image: np.ndarray, bit_depth: int, near: int) -> int:
    if not isinstance(image, np.ndarray) or image.ndim != 3:
        raise OptionError("image must be a (H, W, C) array")
    height, width, channels = image.shape
    maxval = _check_params(height, width, channels, bit_depth, int(near))
    want = np.uint8 if bit_depth == 8 else np.uint16
    if image.dtype != want:
        raise OptionError(f"a {bit_depth}-bit image must be {np.dtype(want).name}")
    return maxval


def encode_lossless(
    image: np.ndarray, bit_depth: int, near: int = 0, progress: Progress = None
) -> bytes:
    """Code ``image`` (H, W, C) exactly (near = 0) or with max error ``near`` per sample.

    The result is the engine payload: one version byte, then the arithmetic-coded stream.
    """
    from .. import native

    _check_image(image, bit_depth, near)
    return native.encode_lossless(image, bit_depth, int(near), progress)


def decode_lossless(
    payload: bytes,
    height: int,
    width: int,
    channels: int,
    bit_depth: int,
    near: int = 0,
    progress: Progress = None,
) -> np.ndarray:
    """Inverse of :func:`encode_lossless`; raises FormatError on a truncated/corrupt payload.

    The caller has checked the image size against its pixel limit (the format's limit,
    MAX_PIXELS, bounds it here)."""
    from .. import native

    _check_params(height, width, channels, bit_depth, int(near))
    _check_payload(payload)
    return native.decode_lossless(
        payload, height, width, channels, bit_depth, int(near), MAX_PIXELS, progress
    )


def _check_payload(payload: bytes) -> None:
    """The payload's framing, before either engine runs: a version byte and the coder's
    first four bytes at least."""
    if len(payload) < 5:
        raise FormatError("lossless payload too short")
    if payload[0] != ENGINE_VERSION:
        raise FormatError(f"unsupported lossless engine version {payload[0]}")


def encode_lossless_numba(
    image: np.ndarray, bit_depth: int, near: int = 0, progress: Progress = None
) -> bytes:
    """:func:`encode_lossless` by the numba engine (the reference)."""
    from .coder import flush, new_state
    from .engine import MAX_BYTES_PER_SAMPLE, State, channel_plan, run_rows

    maxval = _check_image(image, bit_depth, near)
    height, width, channels = image.shape
    img = np.ascontiguousarray(image, dtype=np.int32)
    state = State(height, width, channels)
    order, ref1, ref2 = channel_plan(channels)
    st = new_state()
    block_bytes = ROW_BLOCK * width * channels * MAX_BYTES_PER_SAMPLE + 16
    buf = np.zeros(block_bytes * 2, dtype=np.uint8)
    for y0 in range(0, height, ROW_BLOCK):
        y1 = min(height, y0 + ROW_BLOCK)
        if int(st[3]) + block_bytes > buf.shape[0]:
            grown = np.zeros(max(buf.shape[0] * 2, int(st[3]) + block_bytes), dtype=np.uint8)
            grown[: buf.shape[0]] = buf
            buf = grown
        run_rows(True, y0, y1, img, state, order, ref1, ref2, maxval, int(near), st, buf)
        if progress is not None:
            progress(y1, height)
    flush(st, buf)
    return bytes([ENGINE_VERSION]) + buf[: int(st[3])].tobytes()


def decode_lossless_numba(
    payload: bytes,
    height: int,
    width: int,
    channels: int,
    bit_depth: int,
    near: int = 0,
    progress: Progress = None,
) -> np.ndarray:
    """:func:`decode_lossless` by the numba engine (the reference)."""
    from .coder import new_state, start_decoder
    from .engine import State, channel_plan, run_rows

    maxval = _check_params(height, width, channels, bit_depth, int(near))
    _check_payload(payload)
    buf = np.frombuffer(payload, dtype=np.uint8, offset=1).copy()
    state = State(height, width, channels)
    order, ref1, ref2 = channel_plan(channels)
    st = new_state()
    start_decoder(st, buf)
    dummy = np.zeros((1, 1, 1), dtype=np.int32)
    for y0 in range(0, height, ROW_BLOCK):
        y1 = min(height, y0 + ROW_BLOCK)
        run_rows(False, y0, y1, dummy, state, order, ref1, ref2, maxval, int(near), st, buf)
        if int(st[3]) > buf.shape[0] + 8:
            raise FormatError("lossless payload truncated")
        if progress is not None:
            progress(y1, height)
    if int(st[3]) != buf.shape[0]:
        raise FormatError(
            f"lossless payload length mismatch (consumed {int(st[3])} of {buf.shape[0]} bytes)"
        )
    out = state.rec.astype(np.uint8 if bit_depth == 8 else np.uint16)
    return out
