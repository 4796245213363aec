"""Integer inference of the upsampler and the synthesis MLP (decoder side), in numba.

Why integers: the decoded pixels must be identical on every machine (golden hash test), so no
float rounding may influence them. All arithmetic is int64 with arithmetic shifts (floor);
inputs and weights are clipped (|x| < 2**26, |w| < 2**18, fan-in <= 64) so no sum exceeds
2**50. The per-pixel loops run in numba with ``prange`` over rows; each output depends only on
its own inputs, so the result does not depend on the thread count.
"""

from __future__ import annotations

import os

import numba
import numpy as np
from numba import njit, prange

from neural_memory.lossy.decoding.bitstream import MAX_LEVELS, prefilter_kernel

# Numba's default "omp" threading layer shares the OpenMP runtime with PyTorch: the first
# parallel decode sets the process-wide OpenMP thread count, after which every torch op of a
# later encode in the same process runs with that many spinning threads (measured: training
# steps 15x slower on a busy 2-core machine). The "workqueue" layer has its own threads.
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"

UP_BITS = 10  # fixed-point fraction bits of upsampled latents and synthesis activations
ACT_CLIP = (1 << 26) - 1
# 2x bicubic (a=-0.75) phases, taps over x[k-2..k+1] (even) and x[k-1..k+2] (odd), sum 256.
TAPS_EVEN = (-9, 67, 225, -27)
TAPS_ODD = TAPS_EVEN[::-1]
#: 2x stages of the recursive upsampler: stage s takes level s + 1 to level s.
N_STAGES = MAX_LEVELS - 1
#: Upsampling filter tables: per stage, the even phase's four taps over 256 (the odd phase
#: reads them reversed), each stage summing to 256. Table 0, bicubic at every stage, is payload
#: version 2's. Table 1 (payload version 3) has sharper filters at the fine stages: the
#: per-stage mean of the filters learned with the rest of the model on kodim09, kodim23 and
#: CLIC 097c at lambda 3e-3; at equal steps it made five points on other images 1.1-2.8 %
#: smaller at equal PSNR (lossy.md, session 16). Its sum of |taps| (at most 374 / 256) keeps
#: every feature below 2**25 (the bound in native/src/lossy.c).
UP_TABLES = (
    (TAPS_EVEN,) * N_STAGES,
    (
        (-29, 88, 227, -30),
        (-15, 80, 200, -9),
        (-12, 78, 198, -8),
        (-12, 73, 208, -13),
        (-11, 70, 215, -18),
        (-7, 66, 221, -24),
        TAPS_EVEN,
    ),
)


def stage_taps(table: int) -> np.ndarray:
    """(N_STAGES, 4) int64 even-phase taps of filter table ``table`` (see UP_TABLES).

    >>> stage_taps(0)[0].tolist(), int(stage_taps(1).sum(axis=1).min())
    ([-9, 67, 225, -27], 256)
    """
    return np.array(UP_TABLES[table], np.int64)


@njit(cache=True, parallel=True)
def _prefilter_rows(y: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Exact int64 sums of the 7 taps ``k`` along each row of ``y``, replicate border."""
    h, w = y.shape
    rows = np.empty((h, w), np.int64)
    for r in prange(h):
        for x in range(w):
            acc = np.int64(0)
            for i in range(7):
                acc += k[i] * y[r, min(max(x + i - 3, 0), w - 1)]
            rows[r, x] = acc
    return rows


@njit(cache=True, parallel=True)
def _prefilter_cols(rows: np.ndarray, k: np.ndarray, q: int, lv: int) -> np.ndarray:
    """Along each column of ``rows``, then one rounding to 2**(UP_BITS - lv) and the clip."""
    h, w = rows.shape
    out = np.empty((h, w), np.int64)
    shift = 2 * q
    half = np.int64(1) << (shift - 1)
    top = (np.int64(1) << (24 - lv)) - 1
    for r in prange(h):
        for x in range(w):
            acc = np.int64(0)
            for i in range(7):
                acc += k[i] * rows[min(max(r + i - 3, 0), h - 1), x]
            v = ((acc << (UP_BITS - lv)) + half) >> shift
            out[r, x] = min(max(v, -top), top)
    return out


def prefilter_grid(y: np.ndarray, k: np.ndarray, q: int, lv: int) -> np.ndarray:
    """Level-``lv`` features of integer grid ``y`` (h, w) filtered by the 7 taps ``k`` (sum
    2**q), replicate border: the exact int64 sum over the 7 x 7 window, one rounding to the
    features' scale 2**(UP_BITS - lv) (what ``y << (UP_BITS - lv)`` is without a filter),
    clipped to below 2**(24 - lv), the unfiltered bound. The two passes are two functions:
    numba may fuse consecutive parallel loops of one function, and the column pass reads
    other rows' results of the row pass."""
    return _prefilter_cols(_prefilter_rows(y, k), k, q, lv)


def level_shapes(height: int, width: int, n_levels: int) -> list[tuple[int, int]]:
    """Level i is ceil(H / 2**i) x ceil(W / 2**i)."""
    return [(-(-height // (1 << i)), -(-width // (1 << i))) for i in range(n_levels)]


@njit(cache=True, inline="always")
def _taps(j, n, t):
    """Source indices (clamped to 0..n-1, i.e. replicate border) and weights of output
    sample ``j`` of a 2x stage with even taps ``t`` (4,): phase -1/4 (even j) or +1/4 (odd j)
    around source sample j // 2, the odd phase reading the taps reversed."""
    k = np.int64(j) >> 1
    if j & 1 == 0:
        i0, i1, i2, i3 = k - 2, k - 1, k, k + 1
        t0, t1, t2, t3 = t[0], t[1], t[2], t[3]
    else:
        i0, i1, i2, i3 = k - 1, k, k + 1, k + 2
        t0, t1, t2, t3 = t[3], t[2], t[1], t[0]
    top = n - 1
    return (
        min(max(i0, 0), top),
        min(max(i1, 0), top),
        min(max(i2, 0), top),
        min(max(i3, 0), top),
        t0,
        t1,
        t2,
        t3,
    )


@njit(cache=True, parallel=True)
def _up_rows(x: np.ndarray, n_out: int, t: np.ndarray) -> np.ndarray:
    """2x integer upsampling with even taps ``t`` along axis 1 of (C, h, w), replicate
    border (index clamping), cropped to n_out rows."""
    c_n, h, w = x.shape
    out = np.empty((c_n, n_out, w), np.int64)
    for j in prange(n_out):
        i0, i1, i2, i3, t0, t1, t2, t3 = _taps(j, h, t)
        for c in range(c_n):
            for xx in range(w):
                v = t0 * x[c, i0, xx] + t1 * x[c, i1, xx] + t2 * x[c, i2, xx] + t3 * x[c, i3, xx]
                out[c, j, xx] = (v + 128) >> 8
    return out


@njit(cache=True)
def _up_cols(x: np.ndarray, n_out: int, t: np.ndarray) -> np.ndarray:
    """As :func:`_up_rows`, along axis 2."""
    out = np.empty((x.shape[0], x.shape[1], n_out), np.int64)
    _up_cols_to(x, out, np.arange(x.shape[0]), t)
    return out


@njit(cache=True, parallel=True)
def _up_cols_to(x: np.ndarray, out: np.ndarray, dst: np.ndarray, t: np.ndarray) -> None:
    """Upsample along axis 2 into channels ``dst`` of ``out`` (no full-size temporaries)."""
    c_n, h, w = x.shape
    n_out = out.shape[2]
    for r in prange(h):
        for j in range(n_out):
            i0, i1, i2, i3, t0, t1, t2, t3 = _taps(j, w, t)
            for c in range(c_n):
                v = t0 * x[c, r, i0] + t1 * x[c, r, i1] + t2 * x[c, r, i2] + t3 * x[c, r, i3]
                out[dst[c], r, j] = (v + 128) >> 8


def upsample_grids(
    grids: list[np.ndarray],
    grid_levels: tuple[int, ...],
    height: int,
    width: int,
    table: int = 0,
    prefilter: tuple[np.ndarray, int] | None = None,
) -> np.ndarray:
    """Bring integer latent grids to full resolution: (G, H, W) int64 at 2**UP_BITS scale,
    in grid order, with the stages' filters of UP_TABLES[table]; with ``prefilter``
    ((levels, 3) stored taps, q) each grid first goes through its level's
    :func:`prefilter_grid`.

    Recursive: the stack of coarser (already upsampled) grids is upsampled together, then the
    grids of the next finer level are appended, so a level-i grid goes through i 2x steps.
    """
    taps = stage_taps(table)
    top = max(grid_levels)
    shapes = level_shapes(height, width, top + 1)
    h, w = shapes[top]
    stack = np.zeros((0, h, w), np.int64)
    order: list[int] = []
    out = np.empty((len(grids), height, width), np.int64)
    for lv in range(top, -1, -1):
        new = [g for g, glv in enumerate(grid_levels) if glv == lv]
        if lv < top:
            h, w = shapes[lv]
            rows = _up_rows(stack, h, taps[lv])
            if lv == 0:  # last step: write straight into the output channels
                _up_cols_to(rows, out, np.array(order, np.int64), taps[lv])
            else:
                stack = _up_cols(rows, w, taps[lv])
        # level gain 2**-lv keeps every grid's features in comparable units (see model.py)
        if prefilter is None:
            feats = [grids[g].astype(np.int64) << (UP_BITS - lv) for g in new]
        else:
            k = prefilter_kernel(prefilter[0][lv], prefilter[1])
            feats = [prefilter_grid(grids[g].astype(np.int64), k, prefilter[1], lv) for g in new]
        if lv == 0:
            for g, f in zip(new, feats, strict=True):
                out[g] = f
        elif new:
            stack = np.concatenate([stack, np.stack(feats)], axis=0)
            order += new
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


@njit(cache=True, parallel=True)
def _synth_kernel(feat, dims, w_flat, w_off, b_flat, b_off, qs):
    g_n, h, w = feat.shape
    n_layers = dims.shape[0] - 1
    c_out = dims[n_layers]
    out = np.empty((h, w, c_out), np.uint8)
    for r in prange(h):
        a = np.empty(64, np.int64)
        b = np.empty(64, np.int64)
        for xx in range(w):
            for g in range(g_n):
                a[g] = feat[g, r, xx]
            for layer in range(n_layers):
                n_in = dims[layer]
                n_out = dims[layer + 1]
                q = qs[layer]
                half = np.int64(1) << (q - 1)
                wo = w_off[layer]
                bo = b_off[layer]
                for i in range(n_in):
                    v = a[i]
                    if v > ACT_CLIP:
                        a[i] = ACT_CLIP
                    elif v < -ACT_CLIP:
                        a[i] = -ACT_CLIP
                for j in range(n_out):
                    acc = b_flat[bo + j] << UP_BITS
                    for i in range(n_in):
                        acc += a[i] * w_flat[wo + i * n_out + j]
                    v = (acc + half) >> q
                    if layer < n_layers - 1 and v < 0:
                        v = 0
                    if v > ACT_CLIP:
                        v = ACT_CLIP
                    elif v < -ACT_CLIP:
                        v = -ACT_CLIP
                    b[j] = v
                for j in range(n_out):
                    a[j] = b[j]
            for ch in range(c_out):
                pix = (a[ch] * 255 + (1 << (UP_BITS - 1))) >> UP_BITS
                out[r, xx, ch] = min(max(pix, 0), 255)
    return out


def synthesize(feat: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray, int]]) -> np.ndarray:
    """Per-pixel integer MLP on (G, H, W) features -> (H, W, C) uint8.

    Each layer: clip inputs to +-ACT_CLIP, ``(x @ w + (b << UP_BITS) + 2**(q-1)) >> q``, ReLU
    on hidden layers, clip. int64 throughout: |x| < 2**26, |w| < 2**18, fan-in <= 64 keeps
    every sum below 2**50.
    """
    dims = np.array([layers[0][0].shape[0]] + [wi.shape[1] for wi, _, _ in layers], np.int64)
    w_flat = np.concatenate([wi.astype(np.int64).ravel() for wi, _, _ in layers])
    b_flat = np.concatenate([bi.astype(np.int64).ravel() for _, bi, _ in layers])
    w_off = np.cumsum([0] + [wi.size for wi, _, _ in layers[:-1]]).astype(np.int64)
    b_off = np.cumsum([0] + [bi.size for _, bi, _ in layers[:-1]]).astype(np.int64)
    qs = np.array([q for _, _, q in layers], np.int64)
    return _synth_kernel(np.ascontiguousarray(feat, dtype=np.int64), dims, w_flat, w_off,
                         b_flat, b_off, qs)  # fmt: skip
