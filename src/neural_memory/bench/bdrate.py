"""Bjontegaard delta rate (BD-rate) between two rate-distortion curves.

We follow the common (VCEG-M33 / CompressAI) recipe but with a PCHIP interpolant instead of
a cubic polynomial, because PCHIP never overshoots between points: log-rate is modelled as
a function of PSNR on each curve, both interpolants are integrated over the PSNR interval
the two curves share, and the mean log-rate gap is turned into a percentage.  A negative
value means the *test* codec needs fewer bits than the *anchor* for the same quality.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.interpolate import PchipInterpolator


def _prepare(rate: Sequence[float], quality: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Sort by rate and keep the points where quality strictly increases.

    Real curves occasionally dip (a higher quality setting giving a slightly lower PSNR);
    dropping such points keeps log-rate a function of quality, which PCHIP needs.
    """
    r = np.asarray(rate, dtype=np.float64)
    q = np.asarray(quality, dtype=np.float64)
    keep = np.isfinite(r) & np.isfinite(q) & (r > 0)
    r, q = r[keep], q[keep]
    order = np.argsort(r, kind="stable")
    r, q = r[order], q[order]
    out_r: list[float] = []
    out_q: list[float] = []
    for ri, qi in zip(r, q, strict=True):
        if not out_q or qi > out_q[-1]:
            out_r.append(float(ri))
            out_q.append(float(qi))
    return np.asarray(out_r), np.asarray(out_q)


def bd_rate(
    anchor_rate: Sequence[float],
    anchor_quality: Sequence[float],
    test_rate: Sequence[float],
    test_quality: Sequence[float],
) -> float | None:
    """Average rate difference of *test* vs *anchor* in percent at equal quality.

    Returns ``None`` when either curve has fewer than two usable points or the quality
    ranges do not overlap (the report prints "n/a" then, rather than extrapolating).
    """
    ra, qa = _prepare(anchor_rate, anchor_quality)
    rt, qt = _prepare(test_rate, test_quality)
    if len(qa) < 2 or len(qt) < 2:
        return None
    lo = max(qa[0], qt[0])
    hi = min(qa[-1], qt[-1])
    if not hi > lo:
        return None
    fa = PchipInterpolator(qa, np.log(ra))
    ft = PchipInterpolator(qt, np.log(rt))
    mean_gap = (ft.integrate(lo, hi) - fa.integrate(lo, hi)) / (hi - lo)
    return (math.exp(float(mean_gap)) - 1.0) * 100.0


def quality_at_rate(rate: Sequence[float], quality: Sequence[float], target: float) -> float | None:
    """Quality at a given rate, by PCHIP interpolation in log-rate; None outside the range."""
    r, q = _prepare(rate, quality)
    if len(r) < 2 or not (r[0] <= target <= r[-1]):
        return None
    return float(PchipInterpolator(np.log(r), q)(math.log(target)))


def rate_at_quality(rate: Sequence[float], quality: Sequence[float], target: float) -> float | None:
    """Rate at a given quality, by the PCHIP interpolation of log-rate that :func:`bd_rate`
    integrates; None outside the range. One point of a codec against an anchor's curve.

    >>> round(rate_at_quality([0.1, 0.2, 0.4], [30.0, 33.0, 36.0], 33.0), 6)
    0.2
    """
    r, q = _prepare(rate, quality)
    if len(q) < 2 or not (q[0] <= target <= q[-1]):
        return None
    return math.exp(float(PchipInterpolator(q, np.log(r))(target)))
