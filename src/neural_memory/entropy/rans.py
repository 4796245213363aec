"""Byte-wise rANS with 16-bit integer frequencies, compiled with numba.

Layout: a 32-bit state kept in [2**23, 2**31); the encoder runs over the symbols backwards and
writes renormalisation bytes downwards, then the final state as 4 big-endian bytes in front,
so the decoder reads the stream strictly forwards. Every symbol is given as ``(start, freq)``
with ``sum(freq) == 2**16`` over its alphabet; ``freq >= 1`` is the caller's duty.

The decoder keeps its state in a small int64 array ``st = [x, pos, error]`` so numba functions
that run the latent decode loop can pull symbols one at a time without Python overhead. Reading
past the end of the buffer feeds zero bytes and sets ``error``; callers turn that into
:class:`~neural_memory.errors.FormatError`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

PROB_BITS = 16
PROB_SCALE = 1 << PROB_BITS
RANS_L = 1 << 23


@njit(cache=True)
def rans_encode(starts: np.ndarray, freqs: np.ndarray) -> np.ndarray:
    """Encode symbols given in forward order by their cumulative ``starts`` and ``freqs``."""
    n = starts.shape[0]
    out = np.empty(2 * n + 8, dtype=np.uint8)
    p = out.shape[0]
    x = np.int64(RANS_L)
    for i in range(n - 1, -1, -1):
        s = np.int64(starts[i])
        f = np.int64(freqs[i])
        x_max = np.int64((RANS_L >> PROB_BITS) << 8) * f
        while x >= x_max:
            p -= 1
            out[p] = x & 255
            x >>= 8
        x = ((x // f) << PROB_BITS) + (x % f) + s
    for _ in range(4):
        p -= 1
        out[p] = x & 255
        x >>= 8
    return out[p:].copy()


@njit(cache=True)
def rans_decode_init(buf: np.ndarray, pos: int) -> np.ndarray:
    """Start decoding at byte ``pos`` of ``buf``; returns the state array ``[x, pos, error]``."""
    st = np.zeros(3, dtype=np.int64)
    x = np.int64(0)
    n = buf.shape[0]
    for _ in range(4):
        b = np.int64(0)
        if pos < n:
            b = np.int64(buf[pos])
        else:
            st[2] = 1
        x = (x << 8) | b
        pos += 1
    st[0] = x
    st[1] = pos
    return st


@njit(cache=True, inline="always")
def rans_decode_symbol(st: np.ndarray, buf: np.ndarray, cdf: np.ndarray) -> int:
    """Decode one symbol whose alphabet has cumulative table ``cdf`` (length n+1, cdf[n]=2**16)."""
    x = st[0]
    slot = x & (PROB_SCALE - 1)
    lo = 0
    hi = cdf.shape[0] - 1
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if cdf[mid] <= slot:
            lo = mid
        else:
            hi = mid
    start = np.int64(cdf[lo])
    freq = np.int64(cdf[lo + 1]) - start
    x = freq * (x >> PROB_BITS) + slot - start
    pos = st[1]
    n = buf.shape[0]
    while x < RANS_L:
        b = np.int64(0)
        if pos < n:
            b = np.int64(buf[pos])
        else:
            st[2] = 1
        x = (x << 8) | b
        pos += 1
        if pos > n + 8:
            st[2] = 1
            break
    st[0] = x
    st[1] = pos
    return lo


@njit(cache=True, inline="always")
def rans_decode_bit(st: np.ndarray, buf: np.ndarray) -> int:
    """Decode one equiprobable bit (start 0 / 2**15, freq 2**15)."""
    x = st[0]
    slot = x & (PROB_SCALE - 1)
    half = np.int64(PROB_SCALE >> 1)
    bit = 1 if slot >= half else 0
    start = half * bit
    x = half * (x >> PROB_BITS) + slot - start
    pos = st[1]
    n = buf.shape[0]
    while x < RANS_L:
        b = np.int64(0)
        if pos < n:
            b = np.int64(buf[pos])
        else:
            st[2] = 1
        x = (x << 8) | b
        pos += 1
        if pos > n + 8:
            st[2] = 1
            break
    st[0] = x
    st[1] = pos
    return bit
