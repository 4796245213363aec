"""Rate and quality measures with the field's conventions (see docs/BENCHMARKS.md).

Rate: ``bpp = 8 * bytes / (H * W)`` for lossy, ``bpsp = 8 * bytes / (H * W * C)`` for
lossless, on the whole file. PSNR is computed over all channels with the MSE pooled over
them, with the peak of the array's bit depth (255 for 8-bit), which is how Kodak results are
published. The API, the CLI, the demos and the benchmark all use these functions.
"""

from __future__ import annotations

import math

import numpy as np


def bits_per_pixel(nbytes: int, width: int, height: int) -> float:
    """``8 * bytes / (width * height)``: the lossy rate convention (bpp).

    >>> bits_per_pixel(1000, 100, 80)
    1.0
    """
    return 8 * nbytes / (width * height)


def bits_per_sample(nbytes: int, width: int, height: int, channels: int) -> float:
    """``8 * bytes / (width * height * channels)``: the lossless rate convention (bits per
    sub-pixel, bpsp).

    >>> bits_per_sample(300, 10, 10, 3)
    8.0
    """
    return 8 * nbytes / (width * height * channels)


def mse(reference: np.ndarray, test: np.ndarray) -> float:
    """Mean squared error pooled over every sample.

    >>> mse(np.zeros((2, 2, 3), np.uint8), np.ones((2, 2, 3), np.uint8))
    1.0
    """
    if reference.shape != test.shape:
        raise ValueError(f"shape mismatch: {reference.shape} vs {test.shape}")
    diff = reference.astype(np.float64) - test.astype(np.float64)
    return float(np.mean(diff * diff))


def psnr(reference: np.ndarray, test: np.ndarray, peak: float | None = None) -> float:
    """PSNR in dB; ``inf`` for identical images. ``peak`` defaults to the dtype's maximum.

    >>> round(psnr(np.zeros((2, 2), np.uint8), np.ones((2, 2), np.uint8)), 2)
    48.13
    """
    if peak is None:
        peak = 65535.0 if reference.dtype == np.uint16 else 255.0
    error = mse(reference, test)
    return math.inf if error == 0 else 10.0 * math.log10(peak * peak / error)
