"""The pre-concatenation filters of payload version 4 in training's fused step (numba).

Each latent grid goes through its level's separable 7-tap filter (rows, then columns, the
same taps, replicate border) before the upsampler; CodecModel.prefilter_grids is the
autograd version, :class:`Prefilter` what the CPU's fused step runs around the distortion
kernels of train_kernels.py: the filtered grids forward, then the gradients of the grids and
of the taps from the filtered grids' gradients.

Why kernels of their own: through PyTorch the taps' gradient is reduced in an order that
depends on the thread count, which would make the encoded bytes depend on it; here every
output is one thread's, and the taps' gradient is summed per row (float32, vectorised),
then over rows in float64 in a fixed order. Why all grids in one call: a call to a thread
pool costs tens of microseconds, and 17 grids times five passes made a step on a 128 x 192
crop 14 ms slower;
the grids are laid end to end and each pass is one loop over all their rows, split into a
part per thread.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from neural_memory.lossy.encoding.train_kernels import _run_parts, threads

TAPS = 7
HALF = TAPS // 2


@njit(cache=True, inline="always")
def _clamp(i, n):
    return min(max(i, 0), n - 1)


@njit(cache=True, inline="always")
def _row_filter(src, dst, k, w, reverse):
    """dst[x] = sum_i k[i] src[clamp(x + i - 3)] (``reverse``: k[6 - i]), one row."""
    for x in range(min(HALF, w)):
        acc = np.float32(0.0)
        for i in range(TAPS):
            acc += k[TAPS - 1 - i if reverse else i] * src[_clamp(x + i - HALF, w)]
        dst[x] = acc
    if w > 2 * HALF:  # interior: one pass per tap over equally indexed views (vectorised;
        # offset indices into one view ran 8x slower)
        inner = dst[HALF : w - HALF]
        for x in range(w - 2 * HALF):
            inner[x] = 0.0
        for i in range(TAPS):
            c = k[TAPS - 1 - i if reverse else i]
            shifted = src[i : i + w - 2 * HALF]
            for x in range(w - 2 * HALF):
                inner[x] += c * shifted[x]
    for x in range(max(HALF, w - HALF), w):
        acc = np.float32(0.0)
        for i in range(TAPS):
            acc += k[TAPS - 1 - i if reverse else i] * src[_clamp(x + i - HALF, w)]
        dst[x] = acc


# Each pass is a function of its own over a range of rows [t0, t1) of all grids laid end to
# end, run in parts on train_kernels' thread pool with the GIL released (numba's own parallel
# loops were slower on two threads than one here: 4.3 against 2.8 ms for the four passes of
# a 768 x 512 image's grids).


@njit(cache=True, nogil=True, fastmath=True)
def _forward_rows(t0, t1, y, off, ws, grid_of_row, row_in_grid, lvs, kk, rows_out):
    for t in range(t0, t1):  # along each row
        g = grid_of_row[t]
        r = row_in_grid[t]
        w = ws[g]
        base = off[g] + r * w
        _row_filter(y[base : base + w], rows_out[base : base + w], kk[lvs[g]], w, False)


@njit(cache=True, nogil=True, fastmath=True)
def _forward_cols(t0, t1, off, hs, ws, grid_of_row, row_in_grid, lvs, kk, rows_out, out):
    for t in range(t0, t1):  # along each column
        g = grid_of_row[t]
        r = row_in_grid[t]
        h, w = hs[g], ws[g]
        k = kk[lvs[g]]
        base = off[g] + r * w
        o = out[base : base + w]  # row views: with flat indices the loops ran 6x slower
        for x in range(w):
            o[x] = 0.0
        for i in range(TAPS):
            s = off[g] + _clamp(r + i - HALF, h) * w
            src = rows_out[s : s + w]
            c = k[i]
            for x in range(w):
                o[x] += c * src[x]


@njit(cache=True, nogil=True, fastmath=True)
def _backward_cols(
    t0, t1, gf, rows, off, hs, ws, grid_of_row, row_in_grid, lvs, kk, g_rows, partial
):
    for t in range(t0, t1):  # the column pass: its adjoint, and its taps' products
        g = grid_of_row[t]
        rr = row_in_grid[t]
        h, w = hs[g], ws[g]
        k = kk[lvs[g]]
        base = off[g] + rr * w
        o = g_rows[base : base + w]
        gfr = gf[base : base + w]
        for x in range(w):
            o[x] = 0.0
        # the output rows that read row rr (clamped reads included: a row reads rows at
        # most HALF away, clamping only moves a read toward the border)
        for r in range(max(0, rr - HALF), min(h, rr + HALF + 1)):
            c = np.float32(0.0)
            for i in range(TAPS):
                if _clamp(r + i - HALF, h) == rr:
                    c += k[i]
            s = off[g] + r * w
            src = gf[s : s + w]
            for x in range(w):
                o[x] += c * src[x]
        for i in range(TAPS):  # d/dk_i of the column pass, output row rr
            s = off[g] + _clamp(rr + i - HALF, h) * w
            src = rows[s : s + w]
            acc = np.float32(0.0)
            for x in range(w):
                acc += gfr[x] * src[x]
            partial[t, i] = acc


@njit(cache=True, nogil=True, fastmath=True)
def _backward_rows(t0, t1, y, off, ws, grid_of_row, row_in_grid, lvs, kk, g_rows, gy, partial):
    for t in range(t0, t1):  # the row pass: its taps' products and adjoint
        g = grid_of_row[t]
        r = row_in_grid[t]
        w = ws[g]
        k = kk[lvs[g]]
        base = off[g] + r * w
        gr = g_rows[base : base + w]
        yr = y[base : base + w]
        for i in range(TAPS):
            acc = np.float32(0.0)
            for x in range(min(HALF, w)):
                acc += gr[x] * yr[_clamp(x + i - HALF, w)]
            if w > 2 * HALF:
                inner = gr[HALF : w - HALF]
                shifted = yr[i : i + w - 2 * HALF]
                for x in range(w - 2 * HALF):
                    acc += inner[x] * shifted[x]
            for x in range(max(HALF, w - HALF), w):
                acc += gr[x] * yr[_clamp(x + i - HALF, w)]
            partial[t, TAPS + i] = acc
        dst = gy[base : base + w]
        # interior: the transpose of a 7-tap correlation is the reversed one
        _row_filter(gr, dst, k, w, True)
        for xx in range(min(HALF, w)):  # border outputs: gather their (clamped) readers
            acc = np.float32(0.0)
            for x in range(min(w, xx + HALF + 1)):
                for i in range(TAPS):
                    if _clamp(x + i - HALF, w) == xx:
                        acc += k[i] * gr[x]
            dst[xx] = acc
        for xx in range(max(min(HALF, w), w - HALF), w):
            acc = np.float32(0.0)
            for x in range(max(0, xx - HALF), w):
                for i in range(TAPS):
                    if _clamp(x + i - HALF, w) == xx:
                        acc += k[i] * gr[x]
            dst[xx] = acc


class Prefilter:
    """The filters of one model's grids (their levels and shapes fixed), forward and
    backward over all grids at once.

    >>> pf = Prefilter((0, 1), [(3, 4), (2, 2)])
    >>> ys = [np.arange(12, dtype=np.float32).reshape(3, 4), np.ones((2, 2), np.float32)]
    >>> identity = np.tile(np.eye(1, 7, 3, dtype=np.float32), (2, 1))
    >>> out, _ = pf.forward(ys, identity)
    >>> bool(np.allclose(out[0], ys[0]) and np.allclose(out[1], 1))
    True
    """

    def __init__(self, levels: tuple[int, ...], shapes: list[tuple[int, int]]):
        self.levels = np.array(levels, np.int64)
        self.shapes = shapes
        self.hs = np.array([h for h, _ in shapes], np.int64)
        self.ws = np.array([w for _, w in shapes], np.int64)
        sizes = self.hs * self.ws
        self.off = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.size = int(sizes.sum())
        self.grid_of_row = np.repeat(np.arange(len(shapes)), self.hs).astype(np.int64)
        self.row_in_grid = np.concatenate([np.arange(h) for h in self.hs]).astype(np.int64)
        self.row_off = np.concatenate([[0], np.cumsum(self.hs)]).astype(np.int64)
        # per row of all grids, the values before it: parts of equal work
        self.row_values = np.concatenate([[0], np.cumsum(self.ws[self.grid_of_row])])
        # buffers kept from step to step: fresh ones page-faulted ~14 MB a step (768 x 512)
        # (the filtered grids and the grids' gradients are views of them: valid until the
        # next call, which is the next step's)
        self._bufs = np.empty((6, self.size), np.float32)
        self._partial = np.empty((self.grid_of_row.shape[0], 2 * TAPS), np.float64)

    def _run(self, kernel, *args) -> None:
        """``kernel(t0, t1, *args)`` over all rows, in parts of about equal work on the
        training threads (each row's results are its own: no dependence on the split)."""
        n = threads()
        cuts = np.searchsorted(self.row_values, np.linspace(0, self.size, n + 1)).tolist()
        cuts[0], cuts[-1] = 0, len(self.grid_of_row)
        _run_parts(lambda i: kernel(cuts[i], cuts[i + 1], *args), n)

    def _views(self, flat: np.ndarray) -> list[np.ndarray]:
        return [
            flat[o : o + h * w].reshape(h, w)
            for o, (h, w) in zip(self.off.tolist(), self.shapes, strict=True)
        ]

    def forward(self, grids: list[np.ndarray], kk: np.ndarray) -> tuple[list[np.ndarray], tuple]:
        """(filtered grids, what :meth:`backward` needs) of float32 grids with the float32
        taps ``kk`` (levels, 7)."""
        y, rows, out = self._bufs[:3]
        np.concatenate([g.ravel() for g in grids], out=y)
        kk = np.ascontiguousarray(kk, np.float32)
        idx = (self.off, self.hs, self.ws, self.grid_of_row, self.row_in_grid, self.levels)
        self._run(_forward_rows, y, idx[0], *idx[2:], kk, rows)
        self._run(_forward_cols, *idx, kk, rows, out)
        return self._views(out), (y, rows, kk)

    def backward(
        self, g_grids: list[np.ndarray], state: tuple
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """(gradients of the grids, float64 gradient of the taps (levels, 7)) from the
        filtered grids' gradients ``g_grids``, which receive the grids' (in place); the taps
        serve both passes, so their gradient is the sum of the two passes'."""
        y, rows, kk = state
        gf, g_rows, gy = self._bufs[3:]
        np.concatenate([g.ravel() for g in g_grids], out=gf)
        partial = self._partial
        idx = (self.off, self.hs, self.ws, self.grid_of_row, self.row_in_grid, self.levels)
        self._run(_backward_cols, gf, rows, *idx, kk, g_rows, partial)
        self._run(_backward_rows, y, idx[0], *idx[2:], kk, g_rows, gy, partial)
        g_k = np.zeros((kk.shape[0], TAPS), np.float64)
        for g, lv in enumerate(self.levels.tolist()):
            s = partial[self.row_off[g] : self.row_off[g + 1]].sum(axis=0)
            g_k[lv] += s[:TAPS] + s[TAPS:]
        for dst, src in zip(g_grids, self._views(gy), strict=True):
            np.copyto(dst, src)  # the caller's arrays: they may become .grad, kept past a step
        return g_grids, g_k
