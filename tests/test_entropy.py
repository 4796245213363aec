"""rANS coder and integer Laplace table: roundtrips and pinned constants."""

from __future__ import annotations

import numpy as np
from numba import njit

from neural_memory.entropy.laplace import (
    CDF,
    LOGB_MIN_FP,
    LOGB_STEP_FP,
    NFRAC,
    NSCALE,
    NSYM,
    RADIUS,
    TABLE_SHA256,
    pull_value,
    push_value,
    table_row,
    table_sha256,
)
from neural_memory.entropy.rans import PROB_SCALE, rans_decode_init, rans_encode


@njit(cache=True)
def _push_all(vals, centers, rows, cdf):
    starts = np.empty(vals.shape[0] * 45, np.int64)
    freqs = np.empty_like(starts)
    k = 0
    for i in range(vals.shape[0]):
        k = push_value(vals[i], centers[i], rows[i], cdf, starts, freqs, k)
    return starts[:k], freqs[:k]


@njit(cache=True)
def _pull_all(buf, centers, rows, cdf):
    st = rans_decode_init(buf, 0)
    out = np.empty(centers.shape[0], np.int64)
    for i in range(centers.shape[0]):
        out[i] = pull_value(st, buf, centers[i], rows[i], cdf)
    return out, st[2]


def test_table_is_pinned_and_valid():
    assert table_sha256() == TABLE_SHA256
    freqs = np.diff(CDF, axis=1)
    assert CDF.shape == (NSCALE * NFRAC, NSYM + 1)
    assert (freqs >= 1).all()
    assert (CDF[:, -1] == PROB_SCALE).all()


def test_table_row_is_integer_and_clamped():
    assert table_row(0, LOGB_MIN_FP) == (0, 0)
    assert table_row(-1, LOGB_MIN_FP - 10_000) == (-1, 7)  # frac of -1/256 is 255/256
    c, row = table_row(5 << 8, LOGB_MIN_FP + 10 * LOGB_STEP_FP)
    assert (c, row) == (5, 10 * NFRAC)
    assert table_row(0, 1 << 20)[1] == (NSCALE - 1) * NFRAC


def test_rans_roundtrip_with_escapes():
    rng = np.random.default_rng(1)
    n = 20_000
    vals = np.round(rng.laplace(0, 3, n)).astype(np.int64)
    vals[::997] = 5000
    vals[5::991] = -RADIUS - 1
    centers = rng.integers(-4, 4, n)
    rows = rng.integers(0, NSCALE * NFRAC, n)
    starts, freqs = _push_all(vals, centers, rows, CDF)
    buf = rans_encode(starts, freqs)
    out, err = _pull_all(buf, centers, rows, CDF)
    assert err == 0
    np.testing.assert_array_equal(out, vals)
    ideal = np.sum(16 - np.log2(freqs.astype(float))) / 8
    assert len(buf) <= ideal + 8


def test_truncated_stream_flags_error():
    vals = np.arange(-50, 50, dtype=np.int64)
    centers = np.zeros(100, np.int64)
    rows = np.zeros(100, np.int64)  # narrowest scale: every nonzero value is expensive
    starts, freqs = _push_all(vals, centers, rows, CDF)
    buf = rans_encode(starts, freqs)
    _, err = _pull_all(buf[: len(buf) // 2], centers, rows, CDF)
    assert err == 1
