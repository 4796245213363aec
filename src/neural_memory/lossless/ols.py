"""Online least-squares (OLS) predictor in integer arithmetic.

The fixed predictors of :mod:`predictors` are blended by their recent errors, which picks
the locally best *fixed* direction but cannot find a new linear combination. The OLS
predictor does: per coded channel it keeps an exponentially decayed covariance of a causal
neighbourhood vector ``f`` with the target (``A = sum l^t f f^T``, ``b = sum l^t f x``,
``l = 1 - 2^-SHIFT``) and tracks the solution of ``(A + RIDGE I) w = b`` with a warm-started
Gauss-Seidel sweep on every ``SOLVE_EVERY``-th update (the covariance changes little from one
sample to the next, so a sweep now and then keeps up; the covariance itself is updated with
every sample). This is the idea of GraLIC's and paq8px's image models, here in fixed point so
that encoder and decoder agree bit for bit.

Features are *differences from the W sample* (the target is ``x - W`` too), which fixes the
sum of the weights at 1 (a flat area predicts itself) and removes the huge common DC
component that would otherwise make ``A`` nearly singular and Gauss-Seidel slow. Besides
the channel's own causal neighbourhood (``SP``), a feature vector holds

* for each *reference* channel already coded at this pixel: its co-located sample and 11
  neighbours, each minus the reference's W (``RF``): how G changed here tells how R and B
  will; a 12-sample neighbourhood measured 1.4 % smaller files than a 6-sample one;
* for each *other* channel not coded yet at this pixel (R and B when coding G, B when coding
  R): the same 11 neighbours without the co-located one. Their texture, one pixel away,
  sharpens the fit (0.2 %).

Kodak's colour planes carry a 2x2 pattern (PhotoCD stored chroma at half resolution), so
each channel has four models, one per pixel phase ``(x & 1, y & 1)``: 0.6 % smaller files
than one model per channel.

Fixed point: features are sample differences (for 16-bit images shifted down by ``cs``
bits before they enter the covariance, so that every entry of ``A`` stays below
``65536 * 2^SHIFT < 2^31`` and fits int32); weights have 16 fractional bits and are clipped
to +-``W_CLIP``; the prediction is in 1/16 sample units like every other predictor.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# own channel's neighbourhood (offsets from the coded sample); W is the centre
SP_DY = np.array([-1, -1, -1, 0, -2, -2, -2, -1, -1, -2, -2, 0, -3], dtype=np.int64)
SP_DX = np.array([0, -1, 1, -2, 0, -1, 1, -2, 2, -2, 2, -3, 0], dtype=np.int64)
# other channels: co-located (references only), then 11 neighbours, each minus their W
RF_DY = np.array([0, -1, -1, -1, 0, -2, -1, -1, -2, -2, 0, -3], dtype=np.int64)
RF_DX = np.array([0, 0, -1, 1, -2, 0, -2, 2, -1, 1, -3, 0], dtype=np.int64)
N_SP = SP_DY.shape[0]
N_RF = RF_DY.shape[0]
NF_MAX = N_SP + 2 * N_RF  # at most two references, or N_RF - 1 from each of two others
N_PHASE = 4  # models per channel, one per (x & 1, y & 1)
SHIFT = 11  # decay 1 - 2^-SHIFT per update of a model
RIDGE = 8
W_CLIP = 1 << 19
# the Gauss-Seidel sweep runs on every SOLVE_EVERY-th visit of a model (a power of two); the
# covariance is updated on every visit
SOLVE_EVERY = 4
# the reach of the neighbourhoods: interior samples need no border checks
REACH_UP = 3
REACH_LEFT = 3
REACH_RIGHT = 2


@njit(cache=True, inline="always")
def sample(rec: np.ndarray, y: int, x: int, dy: int, dx: int, c: int, width: int, mid: int) -> int:
    """Causal sample at (y + dy, x + dx) of channel c, replicated at the borders: columns are
    clamped, a missing row repeats the W sample (or ``mid`` at the very first sample)."""
    xx = x + dx
    if xx < 0:
        xx = 0
    elif xx >= width:
        xx = width - 1
    if dy == 0:
        if xx >= x:  # only at the left border: nothing known in this row yet
            if y > 0:
                return rec[y - 1, xx, c]
            return mid
        return rec[y, xx, c]
    yy = y + dy
    if yy < 0:
        if x > 0:
            return rec[y, x - 1, c]
        return mid
    return rec[yy, xx, c]


@njit(cache=True, inline="always")
def _gather(
    rec: np.ndarray,
    y: int,
    x: int,
    c: int,
    dys: np.ndarray,
    dxs: np.ndarray,
    i0: int,
    i1: int,
    base: int,
    width: int,
    mid: int,
    inner: bool,
    f: np.ndarray,
    at: int,
) -> int:
    """f[at:] = samples at offsets i0..i1-1 of channel c minus ``base``; returns the new end."""
    for i in range(i0, i1):
        if inner:
            v = rec[y + dys[i], x + dxs[i], c]
        else:
            v = sample(rec, y, x, dys[i], dxs[i], c, width, mid)
        f[at] = v - base
        at += 1
    return at


@njit(cache=True, inline="always")
def features(
    rec: np.ndarray,
    y: int,
    x: int,
    c: int,
    refs: np.ndarray,
    others: np.ndarray,
    k: int,
    width: int,
    mid: int,
    f: np.ndarray,
) -> tuple[int, int]:
    """Fill ``f`` with the feature vector of channel c at (y, x); returns (count, W sample).

    ``refs`` are channels already coded at this pixel, ``others[k]`` channels coded later
    (their neighbours are known, their sample here is not); -1 entries are unused. (Rows of
    the tables are indexed here rather than sliced by the caller: a slice is a new array
    whose reference counting costs atomic operations in every sample.)"""
    inner = y >= REACH_UP and x >= REACH_LEFT and x + REACH_RIGHT < width
    w0 = rec[y, x - 1, c] if inner else sample(rec, y, x, 0, -1, c, width, mid)
    n = _gather(rec, y, x, c, SP_DY, SP_DX, 0, N_SP, w0, width, mid, inner, f, 0)
    for r in range(refs.shape[0]):
        ch = refs[r]
        if ch >= 0:
            rw = rec[y, x - 1, ch] if inner else sample(rec, y, x, 0, -1, ch, width, mid)
            f[n] = rec[y, x, ch] - rw  # co-located: coded already
            n = _gather(rec, y, x, ch, RF_DY, RF_DX, 1, N_RF, rw, width, mid, inner, f, n + 1)
    for r in range(others.shape[1]):
        ch = others[k, r]
        if ch >= 0:
            rw = rec[y, x - 1, ch] if inner else sample(rec, y, x, 0, -1, ch, width, mid)
            n = _gather(rec, y, x, ch, RF_DY, RF_DX, 1, N_RF, rw, width, mid, inner, f, n)
    return n, w0


@njit(cache=True, inline="always")
def predict(wv: np.ndarray, m: int, f: np.ndarray, n: int, w0: int) -> int:
    """Model m's prediction in 1/16 sample units: 16 W + sum w_i f_i (weights have 16
    fraction bits)."""
    s = 0
    for i in range(n):
        s += wv[m, i] * f[i]
    return w0 * 16 + (s >> 12)


@njit(cache=True, inline="always")
def update(
    am: np.ndarray,
    bv: np.ndarray,
    wv: np.ndarray,
    cnt: np.ndarray,
    m: int,
    f: np.ndarray,
    g: np.ndarray,
    h: np.ndarray,
    n: int,
    t: int,
    cs: int,
    solve: bool,
) -> None:
    """Add the coded sample (target ``t`` = x - W) to model ``m``'s decayed covariance
    (``am[m]``, ``bv[m]``) and, if ``solve``, run one Gauss-Seidel sweep on
    (A + RIDGE I) w = b from the current weights ``wv[m]``.

    The decay is applied every 8th update (by 2^-(SHIFT-3)), so the per-sample rank-one
    update is a plain 32-bit multiply-add that the compiler vectorizes; ``g``, ``h`` are
    scratch."""
    ts = t >> cs
    for j in range(n):
        g[j] = f[j] >> cs
    for i in range(n):
        gi = g[i]
        bv[m, i] += gi * ts
        for j in range(n):
            am[m, i, j] += gi * g[j]
    c = cnt[m] + 1
    cnt[m] = c
    if c & 7 == 0:
        for i in range(n):
            bv[m, i] -= bv[m, i] >> (SHIFT - 3)
            for j in range(n):
                am[m, i, j] -= am[m, i, j] >> (SHIFT - 3)
    if not solve:
        return
    # Gauss-Seidel needs h[i] = sum_j A[i, j] w[j] with w[j] already updated for j < i. It is
    # formed as A w_old (one pass with no dependency chain), plus A[i, k] * (change of w[i])
    # added to every later row k once w[i] has changed (A is exactly symmetric, and integer
    # sums in any order are equal): the same values as a row-by-row sweep, but the rows no
    # longer wait on a fresh scalar weight being read back as part of a vector.
    for i in range(n):
        acc = 0
        for j in range(n):
            acc += am[m, i, j] * wv[m, j]
        h[i] = acc
    for i in range(n):
        s = (bv[m, i] << 16) - RIDGE * wv[m, i] - h[i]
        wi = wv[m, i] + s // (am[m, i, i] + RIDGE)
        if wi > W_CLIP:
            wi = W_CLIP
        elif wi < -W_CLIP:
            wi = -W_CLIP
        dw = wi - wv[m, i]
        wv[m, i] = wi
        if dw != 0:
            for k in range(i + 1, n):
                h[k] += am[m, i, k] * dw
