"""Integer lookup tables for the logistic domain (stretch/squash) and counter rates.

Why integer: the decoder must reproduce every probability bit-exactly on every platform
(DESIGN.md rule 1), so no float ``exp``/``log`` may run at decode time. The logistic function
is pinned by 33 committed knots, ``round(4096 / (1 + exp(-(i - 16) / 2)))`` for i = 0..32,
i.e. one knot every 0.5 logit (128 units of the 8-fractional-bit stretch domain). Everything
else is derived from the knots with integer arithmetic only:

* ``SQUASH[x + 2048]`` for x in [-2048, 2047]: linear interpolation between knots, giving a
  12-bit probability.
* ``STRETCH[p]`` for p in [0, 4095]: the inverse, the smallest x whose squash is >= p.
* ``RECIPROCAL[n]`` = floor(131072 / (2n + 3)) = 65536 / (n + 1.5): the adaptation rate of a
  counter that has seen n events (a running average that slows down as evidence accumulates).
"""

from __future__ import annotations

import numpy as np

SQUASH_KNOTS = (
    1, 2, 4, 6, 10, 17, 27, 45, 74, 120, 194, 311, 488, 747, 1102, 1546, 2048,
    2550, 2994, 3349, 3608, 3785, 3902, 3976, 4022, 4051, 4069, 4079, 4086, 4090, 4092, 4094,
    4095,
)  # fmt: skip

COUNTER_LIMIT_MAX = 1023


def _build_squash() -> np.ndarray:
    knots = np.array(SQUASH_KNOTS, dtype=np.int64)
    x = np.arange(-2048, 2048, dtype=np.int64) + 2048  # 0..4095
    i = x >> 7
    w = x & 127
    hi = np.minimum(i + 1, 32)
    return (knots[i] * (128 - w) + knots[hi] * w + 64) >> 7


def _build_stretch(squash: np.ndarray) -> np.ndarray:
    # squash is non-decreasing, so searchsorted gives the first x with squash(x) >= p.
    idx = np.searchsorted(squash, np.arange(4096, dtype=np.int64), side="left")
    idx = np.minimum(idx, 4095)
    return idx.astype(np.int64) - 2048


# stored in the narrowest type that holds them (int16: 0..4095 and -2047..2047; int32 below
# 2^16): the coder reads them for every input of every decision, and 8 KB tables stay in
# the L1 cache where 32 KB int64 ones did not
SQUASH = _build_squash().astype(np.int16)
STRETCH = _build_stretch(SQUASH.astype(np.int64)).astype(np.int16)
RECIPROCAL = (131072 // (2 * np.arange(COUNTER_LIMIT_MAX + 1, dtype=np.int64) + 3)).astype(np.int32)
