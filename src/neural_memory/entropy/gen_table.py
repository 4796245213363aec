"""Generate the committed discretised-Laplace frequency table (run once; output is committed).

``python -m neural_memory.entropy.gen_table`` writes ``laplace_freqs.npy`` next to this file.
Float ``exp`` is used here only, offline; decoders load the integer table and never evaluate a
float to choose a probability. The table's sha256 is pinned in tests/test_entropy.py, so a
change here is a format change.

Rows are indexed ``scale_idx * NFRAC + frac_idx``: scale ``b = exp(LOGB_MIN + scale_idx *
LOGB_STEP)``, mean offset ``(frac_idx + 0.5) / NFRAC`` above the integer centre. Columns are
symbols: 0 = escape below ``-RADIUS``, ``1 + RADIUS + d`` for ``|d| <= RADIUS``, last = escape
above. Every frequency is >= 1 and each row sums to ``2**16``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from neural_memory.entropy.laplace import (
    LOGB_MIN,
    LOGB_STEP,
    NFRAC,
    NSCALE,
    NSYM,
    RADIUS,
)
from neural_memory.entropy.rans import PROB_SCALE


def _laplace_cdf(x: float, mu: float, b: float) -> float:
    z = (x - mu) / b
    return 0.5 * math.exp(z) if z < 0 else 1.0 - 0.5 * math.exp(-z)


def quantise_pmf(p: np.ndarray) -> np.ndarray:
    """Integer frequencies >= 1 summing to PROB_SCALE, close to ``p`` (largest-remainder)."""
    n = p.shape[0]
    budget = PROB_SCALE - n
    scaled = p / p.sum() * budget
    freq = np.floor(scaled).astype(np.int64)
    rem = budget - int(freq.sum())
    order = np.argsort(-(scaled - freq), kind="stable")
    freq[order[:rem]] += 1
    return freq + 1


def build_table() -> np.ndarray:
    table = np.zeros((NSCALE * NFRAC, NSYM), dtype=np.uint16)
    for si in range(NSCALE):
        b = math.exp(LOGB_MIN + si * LOGB_STEP)
        for fi in range(NFRAC):
            mu = (fi + 0.5) / NFRAC
            p = np.empty(NSYM)
            p[0] = _laplace_cdf(-RADIUS - 0.5, mu, b)
            for d in range(-RADIUS, RADIUS + 1):
                p[1 + RADIUS + d] = _laplace_cdf(d + 0.5, mu, b) - _laplace_cdf(d - 0.5, mu, b)
            p[-1] = 1.0 - _laplace_cdf(RADIUS + 0.5, mu, b)
            p = np.maximum(p, 0.0)
            table[si * NFRAC + fi] = quantise_pmf(p)
    return table


def main() -> None:
    out = Path(__file__).with_name("laplace_freqs.npy")
    np.save(out, build_table())
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
