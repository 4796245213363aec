"""The quality measures the benchmark adds to ``neural_memory.metrics`` (which owns rate,
MSE and PSNR: bpp and bpsp on the real encoded size, containers and headers included; RGB
PSNR with the squared error pooled over all channels, peak 255).

* MS-SSIM is the 5-scale Wang et al. (2003) index computed on each RGB channel and then
  averaged over channels (the convention of pytorch-msssim, which CompressAI uses).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import correlate1d

#: Exponents of the five scales from Wang, Simoncelli and Bovik (2003).
MS_SSIM_WEIGHTS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_WIN_SIZE = 11
_WIN_SIGMA = 1.5


def max_abs_error(a: np.ndarray, b: np.ndarray) -> int:
    """Largest absolute sample difference: the near-lossless guarantee we verify."""
    _check_pair(a, b)
    return int(np.max(np.abs(a.astype(np.int32) - b.astype(np.int32)), initial=0))


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")


def _gaussian_window(size: int = _WIN_SIZE, sigma: float = _WIN_SIGMA) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


def _blur_valid(x: np.ndarray, win: np.ndarray) -> np.ndarray:
    """Separable Gaussian filter keeping only fully covered positions ('valid')."""
    y = correlate1d(x, win, axis=0, mode="constant")
    y = correlate1d(y, win, axis=1, mode="constant")
    r = len(win) // 2
    return y[r : y.shape[0] - r, r : y.shape[1] - r]


def _ssim_and_cs(x: np.ndarray, y: np.ndarray, data_range: float) -> tuple[float, float]:
    """Mean SSIM and mean contrast-structure term of one channel at one scale."""
    win = _gaussian_window()
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    mu_x = _blur_valid(x, win)
    mu_y = _blur_valid(y, win)
    sxx = _blur_valid(x * x, win) - mu_x * mu_x
    syy = _blur_valid(y * y, win) - mu_y * mu_y
    sxy = _blur_valid(x * y, win) - mu_x * mu_y
    cs_map = (2.0 * sxy + c2) / (sxx + syy + c2)
    lum = (2.0 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1)
    return float(np.mean(lum * cs_map)), float(np.mean(cs_map))


def ms_ssim_scales(height: int, width: int, max_scales: int = len(MS_SSIM_WEIGHTS)) -> int:
    """Number of scales usable for an image of this size.

    Every scale needs at least one full 11x11 window, so an image must be at least
    ``10 * 2**(scales-1) + 1`` pixels on its short side for all five scales (161 px).
    Smaller images (test fixtures, tiny crops) use fewer scales with renormalised weights
    rather than failing; the JSON records the count used.
    """
    short = min(height, width)
    scales = max_scales
    while scales > 1 and short < (_WIN_SIZE - 1) * 2 ** (scales - 1) + 1:
        scales -= 1
    return scales


def _downsample2(x: np.ndarray) -> np.ndarray:
    """2x2 average then decimate, as in the reference MATLAB implementation."""
    h, w = (x.shape[0] // 2) * 2, (x.shape[1] // 2) * 2
    x = x[:h, :w]
    return 0.25 * (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2])


def ms_ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Multi-scale SSIM (Wang et al. 2003), averaged over channels.

    Per channel: ``prod_{i<M} cs_i**w_i * ssim_M**w_M`` with negative terms clipped to 0
    (so that fractional powers are defined), Gaussian window 11x11, sigma 1.5,
    K1=0.01, K2=0.03.
    """
    _check_pair(a, b)
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    scales = ms_ssim_scales(a.shape[0], a.shape[1])
    if min(a.shape[0], a.shape[1]) < _WIN_SIZE:
        raise ValueError("image too small for an 11x11 SSIM window")
    weights = np.asarray(MS_SSIM_WEIGHTS[:scales], dtype=np.float64)
    weights = weights / weights.sum()
    values = []
    for c in range(a.shape[2]):
        x = a[..., c].astype(np.float64)
        y = b[..., c].astype(np.float64)
        value = 1.0
        for i in range(scales):
            ssim_i, cs_i = _ssim_and_cs(x, y, data_range)
            if i == scales - 1:
                value *= max(ssim_i, 0.0) ** weights[i]
            else:
                value *= max(cs_i, 0.0) ** weights[i]
                x, y = _downsample2(x), _downsample2(y)
        values.append(value)
    return float(np.mean(values))


def ms_ssim_db(value: float) -> float:
    """MS-SSIM in dB, -10*log10(1 - MS-SSIM): spreads the high-quality end for plots."""
    if value >= 1.0:
        return math.inf
    return -10.0 * math.log10(1.0 - value)
