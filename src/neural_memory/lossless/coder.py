"""32-bit carry-less binary arithmetic coder (paq family), shared by encoder and decoder.

Why binary and hand-written: every decision is a single bit whose probability changes after
each bit, and the coder runs inside a numba loop. A Python-level call per bit into a general
entropy-coding library costs microseconds, which is orders of magnitude slower than this
inlined integer code (see docs/lossless.md for the measurement).

State lives in an int64 array ``st`` so numba functions can update it in place:
``st[0]`` low bound x1, ``st[1]`` high bound x2, ``st[2]`` decoder window x, ``st[3]`` byte
position in ``buf``. Probabilities are 16-bit: ``p1`` = P(bit = 1) * 65536, in [1, 65535].

The decoder never reads outside ``buf``: past the end it shifts in zeros but still advances
``st[3]``, so the caller can detect truncation by comparing ``st[3]`` with the payload length
(a correct stream is consumed exactly: encoder flush bytes = decoder preload bytes).
"""

from __future__ import annotations

import numpy as np
from numba import njit

MASK32 = 0xFFFFFFFF
TOP = 0xFF000000


def new_state() -> np.ndarray:
    """Fresh coder state (x1 = 0, x2 = 2**32 - 1)."""
    st = np.zeros(4, dtype=np.int64)
    st[1] = MASK32
    return st


@njit(cache=True, inline="always")
def code_bit(enc: bool, bit: int, p1: int, st: np.ndarray, buf: np.ndarray) -> int:
    """Encode ``bit`` (enc) or decode and return a bit, with P(1) = p1 / 65536."""
    x1 = st[0]
    x2 = st[1]
    xmid = x1 + (((x2 - x1) * p1) >> 16)
    if not enc:
        bit = 1 if st[2] <= xmid else 0
    if bit:
        x2 = xmid
    else:
        x1 = xmid + 1
    pos = st[3]
    if enc:
        while ((x1 ^ x2) & TOP) == 0:
            buf[pos] = x2 >> 24
            pos += 1
            x1 = (x1 << 8) & MASK32
            x2 = ((x2 << 8) & MASK32) | 255
    else:
        x = st[2]
        n = buf.shape[0]
        while ((x1 ^ x2) & TOP) == 0:
            b = buf[pos] if pos < n else 0
            pos += 1
            x = ((x << 8) & MASK32) | b
            x1 = (x1 << 8) & MASK32
            x2 = ((x2 << 8) & MASK32) | 255
        st[2] = x
    st[0] = x1
    st[1] = x2
    st[3] = pos
    return bit


@njit(cache=True)
def flush(st: np.ndarray, buf: np.ndarray) -> None:
    """Write the 4 bytes of x1 so the decoder's 4-byte window lands inside [x1, x2]."""
    pos = st[3]
    x1 = st[0]
    for s in (24, 16, 8, 0):
        buf[pos] = (x1 >> s) & 255
        pos += 1
    st[3] = pos


@njit(cache=True)
def start_decoder(st: np.ndarray, buf: np.ndarray) -> None:
    """Preload the 4-byte window (zeros past the end of ``buf``)."""
    x = 0
    n = buf.shape[0]
    for i in range(4):
        b = buf[i] if i < n else 0
        x = (x << 8) | b
    st[2] = x
    st[3] = 4
