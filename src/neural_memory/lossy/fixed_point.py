"""Integer inference of the upsampler and the synthesis MLP (shared by encoder and decoder).

Why integers: the decoded pixels must be identical on every machine (golden hash test), so no
float rounding may influence them. Matrix products are done as float64 BLAS matmuls on
integer-valued arrays, which are exact while every partial sum stays below 2**53; inputs and
weights are clipped so that bound holds (|x| < 2**26, |w| < 2**18, fan-in <= 64 -> < 2**50).
Rescaling uses int64 arithmetic shifts (floor), identical everywhere.
"""

from __future__ import annotations

import numpy as np

UP_BITS = 10  # fixed-point fraction bits of upsampled latents and synthesis activations
ACT_CLIP = (1 << 26) - 1
# 2x bicubic (a=-0.75) phases, taps over x[k-2..k+1] (even) and x[k-1..k+2] (odd), sum 256.
TAPS_EVEN = (-9, 67, 225, -27)
TAPS_ODD = (-27, 225, 67, -9)


def level_shapes(height: int, width: int, n_levels: int) -> list[tuple[int, int]]:
    """Level i is ceil(H / 2**i) x ceil(W / 2**i)."""
    return [(-(-height // (1 << i)), -(-width // (1 << i))) for i in range(n_levels)]


def _up_axis(x: np.ndarray, axis: int, n_out: int) -> np.ndarray:
    """2x integer bicubic upsampling along ``axis`` (replicate border), cropped to n_out."""
    x = np.moveaxis(x, axis, -1)
    n = x.shape[-1]
    pad = [(0, 0)] * (x.ndim - 1) + [(2, 2)]
    xp = np.pad(x, pad, mode="edge")
    a, b, c, d, e = (xp[..., i : i + n] for i in range(5))
    even = TAPS_EVEN[0] * a + TAPS_EVEN[1] * b + TAPS_EVEN[2] * c + TAPS_EVEN[3] * d
    odd = TAPS_ODD[0] * b + TAPS_ODD[1] * c + TAPS_ODD[2] * d + TAPS_ODD[3] * e
    out = np.empty((*x.shape[:-1], 2 * n), dtype=np.int64)
    out[..., 0::2] = (even + 128) >> 8
    out[..., 1::2] = (odd + 128) >> 8
    return np.moveaxis(out[..., :n_out], -1, axis)


def upsample_grids(
    grids: list[np.ndarray], grid_levels: tuple[int, ...], height: int, width: int
) -> np.ndarray:
    """Bring integer latent grids to full resolution: (G, H, W) int64 at 2**UP_BITS scale,
    in grid order.

    Recursive: the stack of coarser (already upsampled) grids is upsampled together, then the
    grids of the next finer level are appended, so a level-i grid goes through i 2x steps.
    """
    top = max(grid_levels)
    shapes = level_shapes(height, width, top + 1)
    h, w = shapes[top]
    stack = np.zeros((0, h, w), np.int64)
    order: list[int] = []
    for lv in range(top, -1, -1):
        if lv < top:
            h, w = shapes[lv]
            stack = _up_axis(_up_axis(stack, 1, h), 2, w)
        new = [g for g, glv in enumerate(grid_levels) if glv == lv]
        if new:
            # level gain 2**-lv keeps every grid's features in comparable units (see model.py)
            add = np.stack([grids[g].astype(np.int64) << (UP_BITS - lv) for g in new])
            stack = np.concatenate([stack, add], axis=0)
            order += new
    out = np.empty_like(stack)
    out[order] = stack
    return out


def resize_features(feat: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Integer bilinear resampling of (L, H, W) features to (L, out_h, out_w), pixel centres
    aligned; 16-bit fixed-point weights."""
    _, h, w = feat.shape

    def axis_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # source coordinate of output centre j: (j + 0.5) * n_in / n_out - 0.5, in 1/65536 units
        j = np.arange(n_out, dtype=np.int64)
        pos = ((2 * j + 1) * n_in * 65536) // (2 * n_out) - 32768
        pos = np.clip(pos, 0, (n_in - 1) * 65536)
        i0 = pos >> 16
        frac = pos & 65535
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, frac

    y0, y1, fy = axis_weights(h, out_h)
    x0, x1, fx = axis_weights(w, out_w)
    rows = (
        feat[:, y0, :] * (65536 - fy)[None, :, None] + feat[:, y1, :] * fy[None, :, None] + 32768
    ) >> 16
    out = (
        rows[:, :, x0] * (65536 - fx)[None, None, :] + rows[:, :, x1] * fx[None, None, :] + 32768
    ) >> 16
    return out


def int_linear(x: np.ndarray, w: np.ndarray, b: np.ndarray, q: int, relu: bool) -> np.ndarray:
    """One fixed-point layer: x (N, in) at 2**F, w (in, out) at 2**q, b (out,) at 2**q.

    Returns (x @ w + b << F) >> q (rounded), clipped, at 2**F.
    """
    acc = np.clip(x, -ACT_CLIP, ACT_CLIP).astype(np.float64) @ w.astype(np.float64)
    acc = acc.astype(np.int64) + (b.astype(np.int64) << UP_BITS)[None, :]
    out = (acc + (1 << (q - 1))) >> q
    if relu:
        np.maximum(out, 0, out=out)
    return np.clip(out, -ACT_CLIP, ACT_CLIP)


def synthesize(feat: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray, int]]) -> np.ndarray:
    """Per-pixel MLP on (L, H, W) integer features -> (H, W, C) uint8."""
    _, h, w = feat.shape
    x = feat.reshape(feat.shape[0], -1).T
    for i, (wi, bi, qi) in enumerate(layers):
        x = int_linear(x, wi, bi, qi, relu=i < len(layers) - 1)
    pix = (x * 255 + (1 << (UP_BITS - 1))) >> UP_BITS
    return np.clip(pix, 0, 255).astype(np.uint8).reshape(h, w, -1)
