"""Integer discretised-Laplace coding of integers around a fixed-point mean and log-scale.

The model (ARM, or a per-module weight prior) gives ``mu_fp`` and ``logb_fp`` as integers in
fixed point with ``FP_BITS`` fractional bits. :func:`table_row` maps them to an integer centre
and a row of the committed table using only integer operations, so encoder and decoder pick the
same frequencies on every machine. Values farther than ``RADIUS`` from the centre use an escape
symbol followed by an Exp-Golomb code sent as equiprobable bits.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from numba import njit

from neural_memory.entropy.rans import rans_decode_bit, rans_decode_symbol

RADIUS = 63
NSYM = 2 * RADIUS + 3
NFRAC = 8
NSCALE = 64
FP_BITS = 8
LOGB_MIN_FP = -896  # -3.5 in FP_BITS fixed point
LOGB_STEP_FP = 28  # 0.109375
LOGB_MIN = LOGB_MIN_FP / (1 << FP_BITS)
LOGB_STEP = LOGB_STEP_FP / (1 << FP_BITS)
ESCAPE_MAX_BITS = 20
TABLE_PATH = Path(__file__).with_name("laplace_freqs.npy")
TABLE_SHA256 = "8042969ef116a4739e17bfe688b8ac1f1706840ea2038d28459ccda51ade203e"


def load_cdf_table() -> np.ndarray:
    """Load the committed frequency table and return cumulative rows (int64, NSYM+1 columns)."""
    freqs = np.load(TABLE_PATH).astype(np.int64)
    if freqs.shape != (NSCALE * NFRAC, NSYM):
        raise RuntimeError("laplace_freqs.npy has an unexpected shape")
    cdf = np.zeros((freqs.shape[0], NSYM + 1), dtype=np.int64)
    np.cumsum(freqs, axis=1, out=cdf[:, 1:])
    return cdf


def table_sha256() -> str:
    return hashlib.sha256(np.load(TABLE_PATH).tobytes()).hexdigest()


CDF = load_cdf_table()


@njit(cache=True, inline="always")
def table_row(mu_fp: int, logb_fp: int) -> tuple[int, int]:
    """Integer centre and table row for a fixed-point mean / log-scale."""
    center = mu_fp >> FP_BITS
    frac = (mu_fp & ((1 << FP_BITS) - 1)) >> (FP_BITS - 3)
    si = (logb_fp - LOGB_MIN_FP + (LOGB_STEP_FP >> 1)) // LOGB_STEP_FP
    if si < 0:
        si = 0
    elif si > NSCALE - 1:
        si = NSCALE - 1
    return center, si * NFRAC + frac


@njit(cache=True)
def push_value(
    v: int, center: int, row: int, cdf: np.ndarray, starts: np.ndarray, freqs: np.ndarray, k: int
) -> int:
    """Append the rANS symbols for integer ``v`` to ``starts``/``freqs`` at ``k``; returns new k."""
    d = v - center
    if d < -RADIUS:
        sym = 0
        e = -RADIUS - 1 - d
    elif d > RADIUS:
        sym = NSYM - 1
        e = d - RADIUS - 1
    else:
        sym = 1 + RADIUS + d
        e = -1
    starts[k] = cdf[row, sym]
    freqs[k] = cdf[row, sym + 1] - cdf[row, sym]
    k += 1
    if e >= 0:
        e1 = e + 1
        nb = 0
        while (e1 >> (nb + 1)) > 0:
            nb += 1
        for _ in range(nb):
            starts[k] = 32768
            freqs[k] = 32768
            k += 1
        starts[k] = 0
        freqs[k] = 32768
        k += 1
        for j in range(nb - 1, -1, -1):
            bit = (e1 >> j) & 1
            starts[k] = 32768 * bit
            freqs[k] = 32768
            k += 1
    return k


@njit(cache=True, inline="always")
def pull_value(st: np.ndarray, buf: np.ndarray, center: int, row: int, cdf: np.ndarray) -> int:
    """Decode one integer coded by :func:`push_value`; sets ``st[2]`` on malformed input."""
    sym = rans_decode_symbol(st, buf, cdf[row])
    if sym == 0 or sym == NSYM - 1:
        nb = 0
        while rans_decode_bit(st, buf) == 1:
            nb += 1
            if nb > ESCAPE_MAX_BITS:
                st[2] = 1
                return center
        e1 = 1
        for _ in range(nb):
            e1 = (e1 << 1) | rans_decode_bit(st, buf)
        e = e1 - 1
        if sym == 0:
            return center - RADIUS - 1 - e
        return center + RADIUS + 1 + e
    return center + sym - 1 - RADIUS


@njit(cache=True)
def max_symbols_per_value() -> int:
    return 2 + 2 * ESCAPE_MAX_BITS + 1
