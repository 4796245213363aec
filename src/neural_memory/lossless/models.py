"""Adaptive probability models for one binary decision: counters, logistic mixer, APM.

One call of :func:`code_decision` predicts a bit from ``NM`` context models, mixes their
stretched probabilities with a small online-trained logistic mixer (the "neural" part: one
neuron per weight set, trained by the gradient of the coding cost), refines the mix with an
adaptive probability map (APM/SSE), codes the bit, and then updates everything with the bit.
Encoder and decoder run exactly this code in the same order, so they stay in lock step.

All quantities are integers:
* counters: 16-bit probability ``cm_p`` plus a hit count ``cm_n`` that sets the adaptation
  rate 1/(n + 1.5) until ``limit`` (fast start, then a slow, stable average);
* stretch domain: 8 fractional bits, clamped to [-2047, 2047];
* mixer weights: 16 fractional bits (65536 = 1.0), one weight set per selector context;
* APM: 33 interpolation knots per context over the stretch domain, 16-bit probabilities.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .coder import code_bit

MIX_SHIFT = 16


def init_apm(n_ctx: int, squash: np.ndarray) -> np.ndarray:
    """APM tables starting at the identity map (knot j holds squash((j - 16) * 128))."""
    row = np.array([squash[min(j * 128, 4095)] * 16 for j in range(33)], dtype=np.int32)
    return np.tile(row, n_ctx).astype(np.int32)


@njit(cache=True)
def code_decision(
    enc: bool,
    bit: int,
    node: int,
    ctxoff: np.ndarray,
    nm: int,
    cm_p: np.ndarray,
    cm_n: np.ndarray,
    limits: np.ndarray,
    mix_w: np.ndarray,
    wsel: int,
    apm: np.ndarray,
    apm_ctx: int,
    xin: np.ndarray,
    stretch: np.ndarray,
    squash: np.ndarray,
    recip: np.ndarray,
    st: np.ndarray,
    buf: np.ndarray,
    mix_lr: int,
) -> int:
    """Predict, code (or decode) and learn one bit; returns the bit."""
    dot = 0
    wbase = wsel * (nm + 1)
    for i in range(nm):
        s = stretch[cm_p[ctxoff[i] + node] >> 4]
        xin[i] = s
        dot += mix_w[wbase + i] * s
    xin[nm] = 256
    dot += mix_w[wbase + nm] * 256
    dot >>= MIX_SHIFT
    if dot > 2047:
        dot = 2047
    elif dot < -2047:
        dot = -2047
    pm = squash[dot + 2048]
    # APM refinement, interpolated between the two knots around the mixer output
    s2 = dot + 2048
    lo = s2 >> 7
    wt = s2 & 127
    a = apm_ctx * 33 + lo
    pa = (apm[a] * (128 - wt) + apm[a + 1] * wt) >> 7
    p = (pm * 16 + pa * 3) >> 2
    if p < 24:
        p = 24
    elif p > 65512:
        p = 65512
    bit = code_bit(enc, bit, p, st, buf)
    # learn: mixer (coding-cost gradient), counters, APM knot nearest to the input
    err = ((bit << 12) - pm) * mix_lr
    for i in range(nm + 1):
        mix_w[wbase + i] += (xin[i] * err) >> 14
    target = bit << 16
    for i in range(nm):
        j = ctxoff[i] + node
        n = cm_n[j]
        cm_p[j] += ((target - cm_p[j]) * recip[n]) >> 16
        if n < limits[i]:
            cm_n[j] = n + 1
    k = a + (wt >> 6)
    apm[k] += (target - apm[k]) >> 6
    return bit
