"""Lossy decoder: payload -> pixels, in the C library (native/src/lossy.c) through
:mod:`neural_memory.native`; no numba, no PyTorch. Bit-exact with the numba reference
(``reference.decode_lossy_reference``), which the tests compare it with."""

from __future__ import annotations

import numpy as np

from neural_memory import native


def decode_lossy(
    payload: bytes,
    height: int,
    width: int,
    channels: int,
    size: tuple[int, int] | None = None,
    max_pixels: int | None = None,
) -> np.ndarray:
    """Decode an engine payload to an (H', W', C) uint8 image.

    ``size=(W', H')`` renders the representation on another grid: the full-resolution latent
    features are resampled (integer bilinear) before the synthesis. Corrupted input raises
    :class:`~neural_memory.errors.FormatError`; an image (stored or requested) over
    ``max_pixels`` (default ``native.DEFAULT_MAX_PIXELS``) is refused before anything is
    allocated.
    """
    return native.decode_lossy(payload, height, width, channels, size, max_pixels)
