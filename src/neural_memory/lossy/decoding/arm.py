"""Fixed-point autoregressive entropy model (ARM) over the latents, in numba.

One small MLP, shared by all grids, reads a latent's context and outputs a mean and a
log-scale in 2**FP_BITS fixed point. The context is ``N_SPATIAL`` causal neighbours in the same
grid (zero outside it) and ``N_PARENT`` values of the *parent* grid: the next coarser grid of
the same colour component, around the co-located position (zero for a grid without one).
Grids are coded coarse to fine (:func:`coding_order`), so a parent is fully known, its
non-causal neighbours included. The parent tells the model where the finer grid will be busy
(edges and texture show at every level); on Kodak crops it saved 4.6 % of the latent bits.

The encoder calls :func:`latent_symbols` and the decoder :func:`decode_level`; both evaluate
the MLP with the same integer function :func:`_position_model`, so the probabilities used for
coding are bit-identical on both sides and on every machine.

Layers are packed as ``(w1, b1, w2, b2, w3, b3)`` int64 with per-layer shifts ``qs``; biases are
stored at 2**q and shifted up by FP_BITS inside (the input latents enter as ``y << FP_BITS``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from neural_memory.entropy.laplace import (
    CDF,
    FP_BITS,
    max_symbols_per_value,
    pull_value,
    push_value,
    table_row,
)

# causal neighbourhood (dy, dx), same grid
CTX_OFFSETS = np.array(
    [
        (-3, 0),
        (-2, -1), (-2, 0), (-2, 1),
        (-1, -2), (-1, -1), (-1, 0), (-1, 1), (-1, 2),
        (0, -3), (0, -2), (0, -1),
    ],
    dtype=np.int64,
)  # fmt: skip
# parent neighbourhood (dy, dx) around (y // 2, x // 2), clamped to the parent grid
PARENT_OFFSETS = np.array([(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)], dtype=np.int64)
N_SPATIAL = CTX_OFFSETS.shape[0]
N_PARENT = PARENT_OFFSETS.shape[0]
N_CTX = N_SPATIAL + N_PARENT
PAD = 3
NO_PARENT = np.zeros((0, 0), np.int64)
ACT_CLIP = (1 << 30) - 1
LATENT_MAX = (1 << 14) - 1


@njit(cache=True, inline="always")
def _layer(x, w, b, q, relu, out):
    n_in, n_out = w.shape
    half = np.int64(1) << (q - 1)
    for j in range(n_out):
        acc = b[j] << FP_BITS
        for i in range(n_in):
            acc += x[i] * w[i, j]
        v = (acc + half) >> q
        if relu and v < 0:
            v = 0
        if v > ACT_CLIP:
            v = ACT_CLIP
        elif v < -ACT_CLIP:
            v = -ACT_CLIP
        out[j] = v


@njit(cache=True, inline="always")
def _arm_eval(ctx, w1, b1, w2, b2, w3, b3, qs, h1, h2, o):
    _layer(ctx, w1, b1, qs[0], True, h1)
    _layer(h1, w2, b2, qs[1], True, h2)
    _layer(h2, w3, b3, qs[2], False, o)


@njit(cache=True, inline="always")
def _position_model(padded, parent, y, x, w1, b1, w2, b2, w3, b3, qs, ctx, h1, h2, o):
    """The probability model of latent (y, x): its context through the integer ARM to a table
    row. One function for encoder and decoder, so both always use the same model.
    ``parent``: the parent grid (unpadded), or a (0, 0) array for none."""
    for c in range(N_SPATIAL):
        ctx[c] = padded[PAD + y + CTX_OFFSETS[c, 0], PAD + x + CTX_OFFSETS[c, 1]] << FP_BITS
    hp, wp = parent.shape
    for c in range(N_PARENT):
        v = 0
        if hp > 0:
            py = min(max((y >> 1) + PARENT_OFFSETS[c, 0], 0), hp - 1)
            px = min(max((x >> 1) + PARENT_OFFSETS[c, 1], 0), wp - 1)
            v = parent[py, px]
        ctx[N_SPATIAL + c] = v << FP_BITS
    _arm_eval(ctx, w1, b1, w2, b2, w3, b3, qs, h1, h2, o)
    return table_row(o[0], o[1])


@njit(cache=True)
def latent_symbols(padded, parent, w1, b1, w2, b2, w3, b3, qs, starts, freqs, k):
    """Append the rANS symbols of one grid (``padded``: (h+PAD, w+2*PAD) int64, latents at
    [PAD:, PAD:-PAD]; ``parent``: see :func:`_position_model`) to ``starts``/``freqs`` from
    index ``k``; returns the new ``k``, or -1 if the arrays might overflow (a value can take
    up to ``max_symbols_per_value()`` symbols; the caller retries with larger arrays)."""
    room = max_symbols_per_value()
    hp, wp = padded.shape
    h = hp - PAD
    w = wp - 2 * PAD
    ctx = np.empty(N_CTX, np.int64)
    h1 = np.empty(w1.shape[1], np.int64)
    h2 = np.empty(w2.shape[1], np.int64)
    o = np.empty(2, np.int64)
    for y in range(h):
        for x in range(w):
            if k + room > starts.shape[0]:
                return -1
            center, row = _position_model(
                padded, parent, y, x, w1, b1, w2, b2, w3, b3, qs, ctx, h1, h2, o
            )
            k = push_value(padded[PAD + y, PAD + x], center, row, CDF, starts, freqs, k)
    return k


@njit(cache=True)
def decode_level(st, buf, h, w, parent, w1, b1, w2, b2, w3, b3, qs):
    """Decode one grid of ``h`` x ``w`` latents; returns the padded grid (see latent_symbols)."""
    padded = np.zeros((h + PAD, w + 2 * PAD), np.int64)
    ctx = np.empty(N_CTX, np.int64)
    h1 = np.empty(w1.shape[1], np.int64)
    h2 = np.empty(w2.shape[1], np.int64)
    o = np.empty(2, np.int64)
    for y in range(h):
        for x in range(w):
            center, row = _position_model(
                padded, parent, y, x, w1, b1, w2, b2, w3, b3, qs, ctx, h1, h2, o
            )
            v = pull_value(st, buf, center, row, CDF)
            if v > LATENT_MAX or v < -LATENT_MAX:
                st[2] = 1
                v = 0
            padded[PAD + y, PAD + x] = v
        if st[2] != 0:
            return padded
    return padded


def component_index(grid_levels: tuple[int, ...]) -> list[int]:
    """Colour component of each grid: the k-th grid of a level carries component k."""
    return [sum(1 for j in range(g) if grid_levels[j] == lv) for g, lv in enumerate(grid_levels)]


def parent_grids(grid_levels: tuple[int, ...]) -> list[int]:
    """Index of each grid's parent (same component, one level coarser), -1 for none."""
    comp = component_index(grid_levels)
    where = {(lv, k): g for g, (lv, k) in enumerate(zip(grid_levels, comp, strict=True))}
    return [where.get((lv + 1, k), -1) for lv, k in zip(grid_levels, comp, strict=True)]


def coding_order(grid_levels: tuple[int, ...]) -> list[int]:
    """Grids in the order they are coded: coarse to fine, header order within a level, so
    that every parent precedes its children."""
    return sorted(range(len(grid_levels)), key=lambda g: (-grid_levels[g], g))


def pad_level(level: np.ndarray) -> np.ndarray:
    """Zero-pad a level (top and both sides) into the layout the numba loops index."""
    return np.pad(level.astype(np.int64), ((PAD, 0), (PAD, PAD)))
