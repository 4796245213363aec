"""Causal neighbourhood and the fixed integer predictors that the blend mixes.

All predictions are in 1/16 sample units (``PSCALE``) so that averages keep their fractional
part: the blend and the bias correction work on that finer grid, and the fraction left after
rounding is a useful context for the residual's sign.
"""

from __future__ import annotations

import numpy as np
from numba import njit

PSCALE = 16
N_SPATIAL = 11
N_INTER = 8
NP_MAX = N_SPATIAL + 2 * N_INTER

# indices into the neighbourhood vector filled by fetch()
IW, IN, INW, INE, IWW, INN, INNE = 0, 1, 2, 3, 4, 5, 6


@njit(cache=True, inline="always")
def fetch(rec: np.ndarray, y: int, x: int, c: int, width: int, mid: int, nb: np.ndarray) -> None:
    """Fill ``nb`` with W, N, NW, NE, WW, NN, NNE of channel c; missing ones are replicated."""
    if y == 0:
        if x == 0:
            w = mid
            ww = mid
        else:
            w = rec[y, x - 1, c]
            ww = rec[y, x - 2, c] if x > 1 else w
        n = w
        nw = w
        ne = w
        nn = w
        nne = w
    else:
        n = rec[y - 1, x, c]
        ne = rec[y - 1, x + 1, c] if x + 1 < width else n
        if x == 0:
            w = n
            ww = n
            nw = n
        else:
            w = rec[y, x - 1, c]
            ww = rec[y, x - 2, c] if x > 1 else w
            nw = rec[y - 1, x - 1, c]
        if y > 1:
            nn = rec[y - 2, x, c]
            nne = rec[y - 2, x + 1, c] if x + 1 < width else nn
        else:
            nn = n
            nne = ne
    nb[IW] = w
    nb[IN] = n
    nb[INW] = nw
    nb[INE] = ne
    nb[IWW] = ww
    nb[INN] = nn
    nb[INNE] = nne


@njit(cache=True, inline="always")
def spatial(nb: np.ndarray, gap_shift: int, preds: np.ndarray) -> None:
    """Write the N_SPATIAL spatial predictions (x16) of one channel into preds[0:N_SPATIAL]."""
    w = nb[IW]
    n = nb[IN]
    nw = nb[INW]
    ne = nb[INE]
    ww = nb[IWW]
    nn = nb[INN]
    nne = nb[INNE]
    preds[0] = w * 16
    preds[1] = n * 16
    preds[2] = (w + n - nw) * 16
    preds[3] = ne * 16
    preds[4] = (w + ne) * 8
    preds[5] = (w + n) * 8
    preds[6] = (2 * n - nn) * 16
    preds[7] = (2 * w - ww) * 16
    preds[8] = (n + ne - nne) * 16
    preds[9] = (w + ne - n) * 16
    # CALIC's gradient-adjusted predictor (thresholds scaled to the bit depth)
    dh = abs(w - ww) + abs(n - nw) + abs(n - ne)
    dv = abs(w - nw) + abs(n - nn) + abs(ne - nne)
    dd = (dv - dh) >> gap_shift
    if dd > 80:
        g = w * 16
    elif dd < -80:
        g = n * 16
    else:
        t = (w + n) * 8 + (ne - nw) * 4
        if dd > 32:
            g = (t + w * 16) >> 1
        elif dd > 8:
            g = (3 * t + w * 16) >> 2
        elif dd < -32:
            g = (t + n * 16) >> 1
        elif dd < -8:
            g = (3 * t + n * 16) >> 2
        else:
            g = t
    preds[10] = g


@njit(cache=True, inline="always")
def inter(nb: np.ndarray, rb: np.ndarray, r0: int, preds: np.ndarray, at: int) -> None:
    """Inter-channel predictions: reference sample r0 plus a spatial prediction of the
    difference plane (this channel minus the reference), written at preds[at:at+N_INTER]."""
    dw = nb[IW] - rb[IW]
    dn = nb[IN] - rb[IN]
    dnw = nb[INW] - rb[INW]
    dne = nb[INE] - rb[INE]
    base = r0 * 16
    preds[at] = base + dw * 16
    preds[at + 1] = base + dn * 16
    preds[at + 2] = base + (dw + dn - dnw) * 16
    preds[at + 3] = base + dne * 16
    preds[at + 4] = base + (dw + dne) * 8
    preds[at + 5] = base + (dw + dn) * 8
    # low-pass estimates of the (smooth, rounding-noisy) difference plane
    dww = nb[IWW] - rb[IWW]
    dnn = nb[INN] - rb[INN]
    preds[at + 6] = base + (dw + dn + dnw + dne) * 4
    preds[at + 7] = base + (2 * dw + 2 * dn + dnw + dne + dww + dnn) * 2
