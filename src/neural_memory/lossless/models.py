"""Adaptive probability models for one binary decision: counters, logistic mixer, APM.

One call of :func:`code_decision` predicts a bit from ``NM`` context models, mixes their
stretched probabilities with a small online-trained logistic mixer (the "neural" part: one
neuron per weight set, trained by the gradient of the coding cost), refines the mix with an
adaptive probability map (APM/SSE), codes the bit, and then updates everything with the bit.
Encoder and decoder run exactly this code in the same order, so they stay in lock step.

All quantities are integers:
* counters: a 16-bit probability ``cm[j, 0]`` plus a hit count ``cm[j, 1]`` that sets the
  adaptation rate 1/(n + 1.5) until ``limit`` (fast start, then a slow, stable average);
  both in one 4-byte slot, so a counter costs one cache line, not two (the update
  ``p += ((target - p) * r) >> 16`` with r < 65536 keeps p in [0, 65535]);
* stretch domain: 8 fractional bits, clamped to [-2047, 2047];
* mixer weights: int32 with 16 fractional bits (65536 = 1.0), one weight set per selector
  context, ``MIX_STRIDE`` slots each (the weights, a use count, padding to two cache lines);
  a weight would need 2^31 / 2^16 = 32768 (times the largest input) to wrap, far beyond
  what the gradient steps reach, and int32 wraps identically on every platform anyway;
* APM: 33 interpolation knots per context over the stretch domain, 16-bit probabilities
  (uint16: they start at most at 65520 and the update moves them toward 0 or 65536 by
  floor(diff / 64), which never passes 65473 from below).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .coder import code_bit

MIX_SHIFT = 16
MIX_STRIDE = 32  # int32 slots per mixer weight set: 128 bytes, two whole cache lines
BOOST = 64
BOOST_N = 16


def init_apm(n_ctx: int, squash: np.ndarray) -> np.ndarray:
    """APM tables starting at the identity map (knot j holds squash((j - 16) * 128))."""
    row = np.array([int(squash[min(j * 128, 4095)]) * 16 for j in range(33)], dtype=np.uint16)
    return np.tile(row, n_ctx)


@njit(cache=True, inline="always")
def _mix(mix_w: np.ndarray, wbase: int, xin: np.ndarray, n: int) -> int:
    dot = 0
    for i in range(n):
        dot += mix_w[wbase + i] * xin[i]
    dot >>= MIX_SHIFT
    if dot > 2047:
        dot = 2047
    elif dot < -2047:
        dot = -2047
    return dot


@njit(cache=True)
def rate_table(lr: int) -> np.ndarray:
    """Learning rate (scaled by 16) of a weight set by its use count n: boosted while the set
    has seen few updates, settling to ``lr``. A table, so no decision waits on a division."""
    rates = np.empty(1024, dtype=np.int64)
    for n in range(1024):
        rates[n] = lr * 16 + (lr * 16 * BOOST) // (n + BOOST_N)
    return rates


@njit(cache=True, inline="always")
def _rate(mix_w: np.ndarray, at: int, rates: np.ndarray) -> int:
    """Learning rate of the weight set whose use count is kept at ``at``; counts the use."""
    n = mix_w[at]
    if n < 1023:
        mix_w[at] = n + 1
    return rates[n]


@njit(cache=True, inline="always")
def _apm(apm: np.ndarray, ctx: int, s: int) -> tuple[int, int]:
    """Interpolated APM lookup; returns (16-bit probability, index of the nearer knot)."""
    s2 = s + 2048
    lo = s2 >> 7
    wt = s2 & 127
    a = ctx * 33 + lo
    return (apm[a] * (128 - wt) + apm[a + 1] * wt) >> 7, a + (wt >> 6)


@njit(cache=True, inline="always")
def code_decision(
    enc: bool,
    bit: int,
    node: int,
    ctxoff: np.ndarray,
    nm: int,
    cm: np.ndarray,
    limits: np.ndarray,
    mix_w: np.ndarray,
    msel: np.ndarray,
    mix_f: np.ndarray,
    fsel: int,
    fx: np.ndarray,
    pr: np.ndarray,
    f_lr: int,
    apm: np.ndarray,
    asel: np.ndarray,
    akn: np.ndarray,
    xin: np.ndarray,
    stretch: np.ndarray,
    squash: np.ndarray,
    recip: np.ndarray,
    st: np.ndarray,
    buf: np.ndarray,
    rates: np.ndarray,
) -> int:
    """Predict, code (or decode) and learn one bit; returns the bit.

    ``msel`` holds the weight set (times NNODE) of each first-layer mixer, ``fsel`` the one of
    the second-layer mixer and ``asel`` the context of each APM; ``node`` is added to each so
    every decision has its own sets."""
    for i in range(nm):
        j = ctxoff[i] + node
        n = cm[j, 1]
        xin[i] = stretch[cm[j, 0] >> 4]
        if n < 8:  # a counter that has seen few events speaks softly
            xin[i] = (xin[i] * (n + 1)) >> 3
    xin[nm] = 256
    n1 = nm + 1
    ns = MIX_STRIDE  # weights, a use counter, padding
    nmix = msel.shape[0]
    for j in range(nmix):
        d = _mix(mix_w, (msel[j] + node) * ns, xin, n1)
        fx[j] = d
        pr[j] = squash[d + 2048]
    # second layer: a small mixer over the first-layer outputs
    fx[nmix] = 256
    wf = (fsel + node) * (nmix + 1)
    dm = _mix(mix_f, wf, fx, nmix + 1)
    pm = squash[dm + 2048]
    napm = asel.shape[0]
    psum = 0
    for j in range(napm):
        pa, kn = _apm(apm, asel[j] + node, dm)
        akn[j] = kn
        psum += pa
    pa6 = psum * 2 if napm == 3 else (psum * 6) // napm  # 6 x the APMs' mean
    p = (pm * 32 + pa6) >> 3
    if p < 24:
        p = 24
    elif p > 65512:
        p = 65512
    bit = code_bit(enc, bit, p, st, buf)
    # learn: each mixer by its own coding-cost gradient, counters, nearer APM knots
    for j in range(nmix):
        w = (msel[j] + node) * ns
        e = ((bit << 12) - pr[j]) * _rate(mix_w, w + n1, rates)
        for i in range(n1):
            mix_w[w + i] += (xin[i] * e) >> 18
    ef = ((bit << 12) - pm) * f_lr
    for i in range(nmix + 1):
        mix_f[wf + i] += (fx[i] * ef) >> 14
    target = bit << 16
    for i in range(nm):
        j = ctxoff[i] + node
        n = cm[j, 1]
        cm[j, 0] += ((target - cm[j, 0]) * recip[n]) >> 16
        if n < limits[i]:
            cm[j, 1] = n + 1
    for j in range(napm):
        apm[akn[j]] += (target - apm[akn[j]]) >> 6
    return bit
