"""Float32 numba kernels of the training distortion on CPU: the recursive 2x
upsampler with its adjoint, and the per-pixel synthesis MLP with its backward pass fused.

Why not PyTorch ops: a training step is memory-bound. Autograd materialises every
intermediate of the synthesis at full resolution (hidden layer, ReLU mask, their gradients:
~100 MB per 768 x 512 image, re-read several times), and the upsampler's dense per-axis
operators cost ~1.4 G multiply-adds per step. Here the synthesis runs on blocks of
``BLOCK`` pixels whose hidden activations stay in the L1/L2 cache, and the upsampler is the
4-tap recursion itself (and its transpose for the gradient), so a step does a few passes
over the features instead of dozens.

These kernels only train: the decoder is the integer path of fixed_point.py. They must agree
with the PyTorch forward of model.py to float32 rounding (a test checks the value and the
gradients), so that CUDA training (PyTorch) and CPU training (here) optimise the same loss.

The synthesis and rate kernels also exist in C (native/train/, module ``_train_native``:
register-tiled AVX2/FMA, AVX-512 for the two matrix blocks, chosen at run time, with a plain
C fallback); ``BACKEND`` says which ones run, the numba ones staying the fallback and the
reference of the tests. With a C backend the upsampler runs in C too (native/train/upsample.c:
one grid or channel per part, AVX2/FMA rows and columns, the adjoints as gathers so that every
output element is one fixed sum whatever the thread), and its last row pass is fused into the
synthesis kernel (:func:`synth_sse_rows`): a kodim23 step ran 1.02-1.14x faster than with the
numba upsampler, timed alternately on the project's loaded 2-core VM (2 threads, best run:
99.5 -> 87.3 ms, 21 % of the sgemm ceiling measured in the same run; docs/BENCHMARKS.md).

Reductions (the weight gradients, the squared error, the bits) are summed over a fixed split
of the work into parts (SYNTH_PARTS, ARM_PARTS) whatever the number of threads, and the
parts added in order, so the results do not depend on the thread count.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numba import njit, prange

from neural_memory.lossy.decoding.fixed_point import level_shapes, stage_taps

try:  # the C versions of the synthesis and rate kernels (native/train/, built by setup.py)
    from neural_memory.lossy.encoding import _train_native
except ImportError:  # not built: the numba kernels below do the same work, slower
    _train_native = None
if getattr(_train_native, "API", None) != 6:  # a stale build from older sources: not used
    _train_native = None

# Which kernels synth_sse and arm_rate run: "c" (the best the CPU has: AVX-512, AVX2/FMA or
# plain C), "c-avx2" (at most AVX2), "c-generic" (plain C only), or "numba".
# NM_TRAIN_KERNELS chooses; by default "c" where the extension is built and the CPU has at
# least AVX2 + FMA, else numba (which vectorises for the host CPU, faster than plain C).
_CAPS = {"c": 0, "c-generic": 1, "c-avx2": 2}  # the ISA cap passed to the C kernels
_FAST_C = _train_native is not None and _train_native.simd() in ("avx2", "avx512")
BACKEND = os.environ.get("NM_TRAIN_KERNELS", "c" if _FAST_C else "numba")
if BACKEND not in (*_CAPS, "numba") or (BACKEND != "numba" and _train_native is None):
    BACKEND = "numba"

BLOCK = 256  # pixels per synthesis block: 24 hidden x 256 x 4 B = 24 KB, inside L1/L2
# Reductions (gradient sums) run over a fixed number of parts, never over "one part per
# thread": a float sum split by thread count changed the encoded bytes between 1 and 2
# threads (654 B vs 714 B on one test image). Parts are spread over whatever threads numba
# has; 8 synthesis parts keep 2-8 threads busy, the ARM's 4 parts bound its per-part
# gradient grids (4 copies of all latents: 13 MB for a Kodak image).
SYNTH_PARTS = 8
ARM_PARTS = 4


def stage_filters(table: int) -> np.ndarray:
    """(N_STAGES, 4) float32 even-phase taps of filter table ``table`` (fixed_point.UP_TABLES
    over 256, exact in float32): the ``te`` rows the upsampling kernels below take, stage s
    (level s + 1 -> s) in row s; the odd phase reads a row reversed.

    >>> stage_filters(0)[0].tolist()
    [-0.03515625, 0.26171875, 0.87890625, -0.10546875]
    """
    return (stage_taps(table) / 256.0).astype(np.float32)


@njit(cache=True, inline="always")
def _src(j, n, te):
    """Clamped source indices and float taps of output sample j (see fixed_point._taps), even
    phase ``te`` (4,) float32, the odd phase its reverse."""
    k = j >> 1
    if j & 1 == 0:
        i0, t0, t1, t2, t3 = k - 2, te[0], te[1], te[2], te[3]
    else:
        i0, t0, t1, t2, t3 = k - 1, te[3], te[2], te[1], te[0]
    top = n - 1
    return (
        min(max(i0, 0), top),
        min(max(i0 + 1, 0), top),
        min(max(i0 + 2, 0), top),
        min(max(i0 + 3, 0), top),
        np.float32(t0),
        np.float32(t1),
        np.float32(t2),
        np.float32(t3),
    )


@njit(cache=True, fastmath=True)
def up_cols(x: np.ndarray, n_out: int, te: np.ndarray) -> np.ndarray:
    """(C, h, w) -> (C, h, n_out): 2x along the last axis with even-phase taps ``te``.

    The interior (no clamping) is computed as contiguous even and odd phases, then
    interleaved: 2.5x faster than interleaved stores, which do not vectorise. The few border
    samples take the clamped formula. Serial on purpose: under ``prange`` (or with a branch
    choosing the interior bounds) numba's loops here stopped vectorising and ran 3x slower
    on one thread than this serial loop."""
    c_n, h, w = x.shape
    out = np.empty((c_n, h, n_out), np.float32)
    e0, e1, e2, e3 = te[0], te[1], te[2], te[3]
    o0, o1, o2, o3 = te[3], te[2], te[1], te[0]
    even = np.empty(w, np.float32)
    odd = np.empty(w, np.float32)
    lo, hi = 2, max(2, w - 2)  # interior k: taps k-2..k+2 inside the row
    for c in range(c_n):
        for r in range(h):
            src = x[c, r]
            dst = out[c, r]
            for k in range(lo, hi):
                even[k] = e0 * src[k - 2] + e1 * src[k - 1] + e2 * src[k] + e3 * src[k + 1]
                odd[k] = o0 * src[k - 1] + o1 * src[k] + o2 * src[k + 1] + o3 * src[k + 2]
            for k in range(lo, hi):
                dst[2 * k] = even[k]
                dst[2 * k + 1] = odd[k]
            for j in range(0, min(2 * lo, n_out)):
                i0, i1, i2, i3, t0, t1, t2, t3 = _src(j, w, te)
                dst[j] = t0 * src[i0] + t1 * src[i1] + t2 * src[i2] + t3 * src[i3]
            for j in range(2 * hi, n_out):
                i0, i1, i2, i3, t0, t1, t2, t3 = _src(j, w, te)
                dst[j] = t0 * src[i0] + t1 * src[i1] + t2 * src[i2] + t3 * src[i3]
    return out


@njit(cache=True, parallel=True, fastmath=True)
def up_rows(x: np.ndarray, rows: np.ndarray, out: np.ndarray, te: np.ndarray) -> None:
    """Output rows ``rows`` of the 2x upsampling of (C, h, w) along axis 1 (even-phase taps
    ``te``), written into the first C channels of ``out`` (C', len(rows), w)."""
    c_n, h, w = x.shape
    r_n = rows.shape[0]
    for cj in prange(c_n * r_n):
        c, jj = cj // r_n, cj % r_n
        i0, i1, i2, i3, t0, t1, t2, t3 = _src(rows[jj], h, te)
        a, b, d, e = x[c, i0], x[c, i1], x[c, i2], x[c, i3]
        dst = out[c, jj]
        for k in range(w):
            dst[k] = t0 * a[k] + t1 * b[k] + t2 * d[k] + t3 * e[k]


@njit(cache=True, inline="always")
def _cols_row_adjoint(src, dst, w, n_out, te):
    """One row of :func:`up_cols_adjoint`: interior sources gather the (unclamped) outputs
    that read them, which vectorises; sources 0, 1, w-2, w-1 get the clamped outputs near the
    borders scattered into them."""
    e0, e1, e2, e3 = te[0], te[1], te[2], te[3]
    o0, o1, o2, o3 = te[3], te[2], te[1], te[0]
    if w < 6:
        for j in range(n_out):
            i0, i1, i2, i3, t0, t1, t2, t3 = _src(j, w, te)
            v = src[j]
            dst[i0] += t0 * v
            dst[i1] += t1 * v
            dst[i2] += t2 * v
            dst[i3] += t3 * v
        return
    for i in range(2, w - 2):
        dst[i] = (
            e0 * src[2 * i + 4] + e1 * src[2 * i + 2] + e2 * src[2 * i] + e3 * src[2 * i - 2]
            + o0 * src[2 * i + 3] + o1 * src[2 * i + 1] + o2 * src[2 * i - 1] + o3 * src[2 * i - 3]
        )  # fmt: skip
    for part in range(2):  # outputs that read sources 0, 1, w-2, w-1: j < 8, j >= 2w-8
        for j in range(max(8, 2 * w - 8) if part else 0, n_out if part else min(8, n_out)):
            i0, i1, i2, i3, t0, t1, t2, t3 = _src(j, w, te)
            v = src[j]
            if i0 < 2 or i0 >= w - 2:
                dst[i0] += t0 * v
            if i1 < 2 or i1 >= w - 2:
                dst[i1] += t1 * v
            if i2 < 2 or i2 >= w - 2:
                dst[i2] += t2 * v
            if i3 < 2 or i3 >= w - 2:
                dst[i3] += t3 * v


@njit(cache=True, parallel=True, fastmath=True)
def up_cols_adjoint(g: np.ndarray, w: int, te: np.ndarray) -> np.ndarray:
    """Transpose of :func:`up_cols`: (C, h, n_out) -> (C, h, w)."""
    c_n, h, n_out = g.shape
    out = np.zeros((c_n, h, w), np.float32)
    for cr in prange(c_n * h):
        c, r = cr // h, cr % h
        _cols_row_adjoint(g[c, r], out[c, r], w, n_out, te)
    return out


@njit(cache=True, parallel=True, fastmath=True)
def up_rows_adjoint(g: np.ndarray, rows: np.ndarray, out: np.ndarray, te: np.ndarray) -> np.ndarray:
    """Transpose of :func:`up_rows`: (C, len(rows), w) added into ``out`` (C, h, w), which
    is returned (blocks of rows accumulate into one array). Parallel over channels (each
    output row gathers from several input rows)."""
    c_n, r_n, w = g.shape
    h = out.shape[1]
    for c in prange(c_n):
        for jj in range(r_n):
            i0, i1, i2, i3, t0, t1, t2, t3 = _src(rows[jj], h, te)
            src = g[c, jj]
            a, b, d, e = out[c, i0], out[c, i1], out[c, i2], out[c, i3]
            for k in range(w):
                v = src[k]
                a[k] += t0 * v
                b[k] += t1 * v
                d[k] += t2 * v
                e[k] += t3 * v
    return out


class Upsampler:
    """The recursive upsampler of fixed_point.upsample_grids in float32, with its adjoint,
    split so that full-resolution rows can be produced block by block (bounded memory).

    Channels come out in *stack order* (coarsest level first, as the recursion appends them);
    ``order[k]`` is the grid of output channel k. Within a 2x step the columns are upsampled
    before the rows (the integer decoder does rows first; in exact arithmetic the two agree,
    and columns-first runs the strided axis on half as many rows). Each 2x stage uses its
    filter of ``table`` (fixed_point.UP_TABLES, the payload version's).

    >>> import numpy as np
    >>> up = Upsampler((0, 1), 4, 6)
    >>> grids = [np.ones((4, 6), np.float32), np.ones((2, 3), np.float32)]
    >>> coarse = up.coarse(grids)
    >>> up.rows(coarse, grids, np.arange(4)).shape, up.order
    ((2, 4, 6), [1, 0])
    """

    def __init__(self, grid_levels: tuple[int, ...], height: int, width: int, table: int = 0):
        self.grid_levels = grid_levels
        self.taps = stage_filters(table)  # (N_STAGES, 4) float32, stage s in row s
        self.top = max(grid_levels)
        self.shapes = level_shapes(height, width, self.top + 1)
        self.by_level = [
            [g for g, lv in enumerate(grid_levels) if lv == level] for level in range(self.top + 1)
        ]
        self.order = [g for level in range(self.top, -1, -1) for g in self.by_level[level]]
        # the coarse stack's channels: (grid, level), coarsest first
        self.stack = [(g, lv) for lv in range(self.top, 0, -1) for g in self.by_level[lv]]

    def _gained(self, grids: list[np.ndarray], level: int) -> np.ndarray:
        gain = np.float32(2.0**-level)
        return np.stack([grids[g] * gain for g in self.by_level[level]])

    def coarse(self, grids: list[np.ndarray], backend: str | None = None) -> np.ndarray | None:
        """The stack of all grids of level >= 1 at level-1 rows and full-resolution columns
        (None if there are none): what :meth:`rows` upsamples to any full-resolution rows."""
        cap = _up_cap(backend)
        if cap is not None:
            if not self.stack:
                return None
            (h, w), (h1, _) = self.shapes[0], self.shapes[1]
            out = np.empty((len(self.stack), h1, w), np.float32)
            ins = [_f32(grids[g]) for g, _ in self.stack]

            def part(k: int) -> None:  # one grid (channel) per part: they are independent
                _train_native.up_coarse(ins[k], self.stack[k][1], h, w, self.taps, out[k], cap)

            _run_parts(part, len(self.stack))
            return out
        stack = None
        for level in range(self.top, 0, -1):
            if stack is not None:  # stage `level`: level + 1 -> level
                h, w = self.shapes[level]
                wide = up_cols(stack, w, self.taps[level])
                stack = np.empty((wide.shape[0], h, w), np.float32)
                up_rows(wide, np.arange(h), stack, self.taps[level])
            if self.by_level[level]:
                add = self._gained(grids, level)
                stack = add if stack is None else np.concatenate([stack, add])
        return None if stack is None else up_cols(stack, self.shapes[0][1], self.taps[0])

    def rows(
        self, coarse: np.ndarray | None, grids: list[np.ndarray], rows: np.ndarray,
        backend: str | None = None,
    ) -> np.ndarray:  # fmt: skip
        """(G, len(rows), W) features at full-resolution ``rows``."""
        n_new = len(self.by_level[0])
        n_old = 0 if coarse is None else coarse.shape[0]
        out = np.empty((n_old + n_new, rows.shape[0], self.shapes[0][1]), np.float32)
        cap = _up_cap(backend)
        if coarse is not None and cap is not None:
            _up_rows_c(coarse, rows, out, self.taps[0], cap, adjoint=False)
        elif coarse is not None:
            up_rows(coarse, rows, out, self.taps[0])
        for k, g in enumerate(self.by_level[0]):
            out[n_old + k] = grids[g][rows]
        return out

    def rows_adjoint(
        self, grad: np.ndarray, rows: np.ndarray, g_coarse, g_grids, backend: str | None = None
    ) -> None:
        """Accumulate the adjoint of :meth:`rows` into ``g_coarse`` (shape of the coarse
        stack) and the level-0 entries of ``g_grids`` (full-size arrays)."""
        n_old = grad.shape[0] - len(self.by_level[0])
        cap = _up_cap(backend)
        if n_old and cap is not None:
            _up_rows_c(grad, rows, g_coarse, self.taps[0], cap, adjoint=True)
        elif n_old:
            up_rows_adjoint(grad[:n_old], rows, g_coarse, self.taps[0])
        for k, grid in enumerate(self.by_level[0]):
            g_grids[grid][rows] += grad[n_old + k]

    def coarse_adjoint(
        self, g_coarse: np.ndarray | None, g_grids: list[np.ndarray], backend: str | None = None
    ) -> None:
        """Accumulate the adjoint of :meth:`coarse` into the level >= 1 entries of
        ``g_grids`` (contiguous float32 arrays, as the C kernels write them in place)."""
        if g_coarse is None:
            return
        cap = _up_cap(backend)
        if cap is not None:
            h, w = self.shapes[0]
            g_coarse = _f32(g_coarse)
            for g, _ in self.stack:
                if not (g_grids[g].flags.c_contiguous and g_grids[g].dtype == np.float32):
                    raise ValueError("g_grids must be contiguous float32 arrays")

            def part(k: int) -> None:  # each grid has one channel: parts write apart
                g, level = self.stack[k]
                _train_native.up_coarse_adjoint(
                    g_coarse[k], level, h, w, self.taps, g_grids[g], cap
                )

            _run_parts(part, len(self.stack))
            return
        g = up_cols_adjoint(g_coarse, self.shapes[1][1], self.taps[0])
        for level in range(1, self.top + 1):
            new = self.by_level[level]
            n_old = g.shape[0] - len(new)
            gain = np.float32(2.0**-level)
            for k, grid in enumerate(new):
                g_grids[grid] += g[n_old + k] * gain
            if level < self.top:
                h_c, w_c = self.shapes[level + 1]
                acc = np.zeros((n_old, h_c, g.shape[2]), np.float32)
                te = self.taps[level]  # the adjoint of stage `level`
                g = up_cols_adjoint(
                    up_rows_adjoint(g[:n_old], np.arange(g.shape[1]), acc, te), w_c, te
                )


@njit(cache=True, parallel=True, fastmath=True)
def _synth_sse_kernel(feat, target, w1, b1, w2, b2, scale, want_grad, grad_feat, n_thr):
    """See :func:`synth_sse`; the hidden width must be a multiple of 4 (the loops handle
    four hidden units at a time so that each value loaded serves four multiply-adds)."""
    g_n, n = feat.shape
    h_n = w1.shape[0]
    c_n = w2.shape[0]
    n_blocks = (n + BLOCK - 1) // BLOCK
    per = (n_blocks + n_thr - 1) // n_thr
    sse = np.zeros(n_thr, np.float64)
    gw1 = np.zeros((n_thr, h_n, g_n), np.float32)
    gb1 = np.zeros((n_thr, h_n), np.float32)
    gw2 = np.zeros((n_thr, c_n, h_n), np.float32)
    gb2 = np.zeros((n_thr, c_n), np.float32)
    two_s = np.float32(2.0 * scale)
    zero = np.float32(0.0)
    for t in prange(n_thr):
        hid = np.empty((h_n, BLOCK), np.float32)
        gout = np.empty((c_n, BLOCK), np.float32)
        ghid = np.empty((h_n, BLOCK), np.float32)
        acc = np.empty(BLOCK, np.float32)
        for blk in range(t * per, min(n_blocks, (t + 1) * per)):
            n0 = blk * BLOCK
            m = min(BLOCK, n - n0)
            # hidden = relu(w1 @ feat + b1)
            for k in range(0, h_n, 4):
                h0, h1, h2, h3 = hid[k], hid[k + 1], hid[k + 2], hid[k + 3]
                h0[:m] = b1[k]
                h1[:m] = b1[k + 1]
                h2[:m] = b1[k + 2]
                h3[:m] = b1[k + 3]
                for gi in range(g_n):
                    f = feat[gi, n0 : n0 + m]
                    a0, a1, a2, a3 = w1[k, gi], w1[k + 1, gi], w1[k + 2, gi], w1[k + 3, gi]
                    for i in range(m):
                        fv = f[i]
                        h0[i] += a0 * fv
                        h1[i] += a1 * fv
                        h2[i] += a2 * fv
                        h3[i] += a3 * fv
                for i in range(m):
                    h0[i] = max(h0[i], zero)
                    h1[i] = max(h1[i], zero)
                    h2[i] = max(h2[i], zero)
                    h3[i] = max(h3[i], zero)
            # output = w2 @ hidden + b2, squared error, d(scale * SSE) / d output
            for c in range(c_n):
                acc[:m] = b2[c]
                for k in range(0, h_n, 4):
                    h0, h1, h2, h3 = hid[k], hid[k + 1], hid[k + 2], hid[k + 3]
                    a0, a1, a2, a3 = w2[c, k], w2[c, k + 1], w2[c, k + 2], w2[c, k + 3]
                    for i in range(m):
                        acc[i] += a0 * h0[i] + a1 * h1[i] + a2 * h2[i] + a3 * h3[i]
                tg = target[c, n0 : n0 + m]
                go = gout[c]
                s = 0.0
                for i in range(m):
                    e = acc[i] - tg[i]
                    s += e * e
                    go[i] = two_s * e
                sse[t] += s
            if not want_grad:
                continue
            # second layer: weight and bias gradients
            for c in range(c_n):
                go = gout[c]
                gb2[t, c] += go[:m].sum()
                for k in range(0, h_n, 4):
                    h0, h1, h2, h3 = hid[k], hid[k + 1], hid[k + 2], hid[k + 3]
                    s0 = s1 = s2 = s3 = zero
                    for i in range(m):
                        gv = go[i]
                        s0 += gv * h0[i]
                        s1 += gv * h1[i]
                        s2 += gv * h2[i]
                        s3 += gv * h3[i]
                    gw2[t, c, k] += s0
                    gw2[t, c, k + 1] += s1
                    gw2[t, c, k + 2] += s2
                    gw2[t, c, k + 3] += s3
            # gradient at the hidden layer (through the ReLU), first-layer bias
            for k in range(h_n):
                gk = ghid[k]
                hk = hid[k]
                gk[:m] = 0.0
                for c in range(c_n):
                    wv = w2[c, k]
                    go = gout[c]
                    for i in range(m):
                        gk[i] += wv * go[i]
                s0 = zero
                for i in range(m):
                    if hk[i] <= 0.0:
                        gk[i] = 0.0
                    s0 += gk[i]
                gb1[t, k] += s0
            # first layer: weight gradients and the gradient of the features
            for gi in range(g_n):
                f = feat[gi, n0 : n0 + m]
                for k in range(0, h_n, 4):
                    g0, g1, g2, g3 = ghid[k], ghid[k + 1], ghid[k + 2], ghid[k + 3]
                    s0 = s1 = s2 = s3 = zero
                    for i in range(m):
                        fv = f[i]
                        s0 += g0[i] * fv
                        s1 += g1[i] * fv
                        s2 += g2[i] * fv
                        s3 += g3[i] * fv
                    gw1[t, k, gi] += s0
                    gw1[t, k + 1, gi] += s1
                    gw1[t, k + 2, gi] += s2
                    gw1[t, k + 3, gi] += s3
                acc[:m] = 0.0
                for k in range(0, h_n, 4):
                    g0, g1, g2, g3 = ghid[k], ghid[k + 1], ghid[k + 2], ghid[k + 3]
                    a0, a1, a2, a3 = w1[k, gi], w1[k + 1, gi], w1[k + 2, gi], w1[k + 3, gi]
                    for i in range(m):
                        acc[i] += a0 * g0[i] + a1 * g1[i] + a2 * g2[i] + a3 * g3[i]
                grad_feat[gi, n0 : n0 + m] = acc[:m]
    return sse.sum(), gw1.sum(axis=0), gb1.sum(axis=0), gw2.sum(axis=0), gb2.sum(axis=0)


def synth_sse(
    feat: np.ndarray,
    target: np.ndarray,
    w1: np.ndarray,
    b1: np.ndarray,
    w2: np.ndarray,
    b2: np.ndarray,
    scale: float,
    grad_feat: np.ndarray | None,
    backend: str | None = None,
) -> tuple[float, list[np.ndarray]]:
    """Sum of squared errors of ``relu(w1 @ feat + b1) @ w2 + b2`` against ``target`` (all
    pixels; feat (G, N), target (C, N), weights in nn.Linear layout), and with ``grad_feat``
    given, the gradients of ``scale * SSE``: written into ``grad_feat`` and returned for
    [w1, b1, w2, b2].

    The pixel blocks are split into SYNTH_PARTS contiguous ranges whatever the thread count,
    each summed in order and the partial sums added in part order, so the result is the
    same on any number of threads (deterministic encoding).

    >>> import numpy as np
    >>> f, t = np.ones((2, 5), np.float32), np.zeros((1, 5), np.float32)
    >>> w1, b1 = np.ones((3, 2), np.float32), np.zeros(3, np.float32)
    >>> w2, b2 = np.ones((1, 3), np.float32), np.zeros(1, np.float32)
    >>> synth_sse(f, t, w1, b1, w2, b2, 1.0, None)[0]  # each pixel predicts 6
    180.0
    """
    backend = backend or BACKEND
    if backend != "numba":
        return _synth_sse_c(feat, target, w1, b1, w2, b2, scale, grad_feat, backend)
    h_n = w1.shape[0]
    pad = -h_n % 4  # zero hidden units: relu(0) = 0 and no weight reads them
    if pad:
        w1 = np.concatenate([w1, np.zeros((pad, w1.shape[1]), np.float32)])
        b1 = np.concatenate([b1, np.zeros(pad, np.float32)])
        w2 = np.concatenate([w2, np.zeros((w2.shape[0], pad), np.float32)], axis=1)
    want = grad_feat is not None
    out = grad_feat if want else np.empty((1, 1), np.float32)
    sse, gw1, gb1, gw2, gb2 = _synth_sse_kernel(
        feat, target, np.ascontiguousarray(w1), b1, np.ascontiguousarray(w2), b2,
        scale, want, out, SYNTH_PARTS,
    )  # fmt: skip
    return float(sse), [gw1[:h_n], gb1[:h_n], gw2[:, :h_n], gb2]


def synth_sse_rows(
    up: Upsampler,
    coarse: np.ndarray | None,
    grids: list[np.ndarray],
    rows: np.ndarray,
    target: np.ndarray,
    w1: np.ndarray,
    b1: np.ndarray,
    w2: np.ndarray,
    b2: np.ndarray,
    scale: float,
    g_coarse: np.ndarray | None,
    g_grids: list[np.ndarray] | None,
    backend: str | None = None,
) -> tuple[float, list[np.ndarray]]:
    """:func:`synth_sse` of the features ``up.rows(coarse, grids, rows)`` (w1's columns in
    stack order), target (C, len(rows) * W); with ``g_grids`` given, the feature gradients
    go through the adjoint of the rows pass into ``g_coarse`` and the level-0 ``g_grids``
    (added), as :meth:`Upsampler.rows_adjoint` would.

    With a C backend the features are never stored: each block of pixels builds its own from
    the coarse stack and sends its gradient straight back (a full-resolution feature array
    and its gradient, 2 x 27 MB for a Kodak image, were written and read back once each)."""
    backend = backend or BACKEND
    want = g_grids is not None
    if backend == "numba":
        feat = up.rows(coarse, grids, rows, backend)
        g_n = feat.shape[0]
        g_feat = np.empty_like(feat) if want else None
        sse, grads = synth_sse(
            feat.reshape(g_n, -1), target, w1, b1, w2, b2, scale,
            None if g_feat is None else g_feat.reshape(g_n, -1), backend,
        )  # fmt: skip
        if want:
            up.rows_adjoint(g_feat, rows, g_coarse, g_grids, backend)
        return sse, grads
    nat = _train_native
    rows = np.ascontiguousarray(rows, np.int64)
    (h, w), h1 = up.shapes[0], (up.shapes[0][0] + 1) // 2
    new = up.by_level[0]
    n_old = 0 if coarse is None else coarse.shape[0]
    g_n, n = n_old + len(new), rows.shape[0] * w
    h_n, c_n = w1.shape[0], w2.shape[0]
    coarse = None if coarse is None else _f32(coarse)
    lvl0 = None
    if new:
        lvl0 = _f32(grids[new[0]]) if len(new) == 1 else np.stack([_f32(grids[g]) for g in new])
    g_lvl0 = None
    if want and new:
        g0 = g_grids[new[0]]
        direct = len(new) == 1 and g0.flags.c_contiguous and g0.dtype == np.float32
        g_lvl0 = g0 if direct else np.zeros((len(new), h, w), np.float32)
    n_blocks = -(-n // nat.SYN_BLOCK)
    per = -(-n_blocks // SYNTH_PARTS)
    bounds = [min(n_blocks, t * per) for t in range(SYNTH_PARTS + 1)]
    # Per part, the coarse rows its pixels read: [lo, hi). Rows read by one part only get
    # its gradients directly in g_coarse; rows shared with a neighbour go to the part's
    # small "edge" array, added afterwards in part order (a fixed sum whatever the threads).
    spans = []
    for t in range(SYNTH_PARTS):
        p0, p1 = bounds[t] * nat.SYN_BLOCK, min(n, bounds[t + 1] * nat.SYN_BLOCK)
        if p1 <= p0 or not n_old or not want:
            spans.append((0, 0))
            continue
        part_rows = rows[p0 // w : (p1 - 1) // w + 1]
        lo = max(0, (int(part_rows.min()) >> 1) - 2)
        spans.append((lo, min(h1, (int(part_rows.max()) >> 1) + 3)))
    readers = np.zeros(h1 + 1, np.int64)
    for lo, hi in spans:
        readers[lo:hi] += 1
    bands = []  # per part: (lo, slot, edge, shared rows)
    for lo, hi in spans:
        shared = [r for r in range(lo, hi) if readers[r] > 1]
        slot = np.full(hi - lo, -1, np.int64)
        slot[[r - lo for r in shared]] = np.arange(len(shared))
        edge = np.zeros((n_old, len(shared), w), np.float32) if shared else None
        bands.append((lo, slot, edge, shared))
    sizes = (h_n * g_n, h_n, c_n * h_n, c_n)
    outs = np.zeros((SYNTH_PARTS, sum(sizes)), np.float32)
    target, w1, b1, w2, b2 = _f32(target), _f32(w1), _f32(b1), _f32(w2), _f32(b2)
    cap = _CAPS[backend]

    if want and n_old and not (g_coarse.flags.c_contiguous and g_coarse.dtype == np.float32):
        raise ValueError("g_coarse must be a contiguous float32 array")

    def part(t: int) -> float:
        lo, slot, edge, _ = bands[t]
        return nat.synth_up_part(
            coarse, lvl0, rows, target, w1, b1, w2, b2, g_coarse, edge, slot, g_lvl0, outs[t],
            n_old, len(new), h1, h, w, c_n, h_n, bounds[t], bounds[t + 1], lo, float(scale),
            want, up.taps[0], cap,
        )  # fmt: skip

    sse = 0.0
    for s in _run_parts(part, SYNTH_PARTS):
        sse += s
    if want:
        for _, _, edge, shared in bands:  # in part order: a fixed sum for every element
            for j, r in enumerate(shared):
                g_coarse[:, r] += edge[:, j]
        if g_lvl0 is not None and g_lvl0 is not g_grids[new[0]]:
            for k, g in enumerate(new):
                g_grids[g] += g_lvl0[k]
    tot = _in_order(outs)
    gw1, gb1, gw2, gb2 = np.split(tot, np.cumsum(sizes)[:-1])
    return sse, [gw1.reshape(h_n, g_n), gb1, gw2.reshape(c_n, h_n), gb2]


@njit(cache=True, inline="always")
def _neg_log2_laplace(v, mu, logb, logb_lo, logb_hi):
    """-log2 P(round(v)) under Laplace(mu, exp(logb)) on unit bins (as model.laplace_prob,
    floored at 2**-16), and its derivatives with respect to v, mu and the unclamped logb."""
    lb = min(max(logb, logb_lo), logb_hi)
    inv_b = np.exp(-lb)
    d = v - mu
    u = abs(d)
    sgn = 1.0 if d > 0 else (-1.0 if d < 0 else 0.0)
    upper = 0.5 * np.exp(-(u + 0.5) * inv_b)
    a = (u - 0.5) * inv_b
    if a > 0:
        lower = 0.5 * np.exp(-a)
        dl_du = -inv_b * lower
        dl_dib = -(u - 0.5) * lower
    else:
        e = 0.5 * np.exp(a)
        lower = 1.0 - e
        dl_du = -inv_b * e
        dl_dib = -(u - 0.5) * e
    p = lower - upper
    if p < 2.0**-16:
        return 16.0, 0.0, 0.0, 0.0
    dp_du = dl_du + inv_b * upper
    dp_dib = dl_dib + (u + 0.5) * upper
    k = -1.0 / (p * np.log(2.0))  # d(-log2 p) / dp
    g_u = k * dp_du
    g_logb = 0.0
    if logb_lo <= logb <= logb_hi:
        g_logb = k * dp_dib * -inv_b
    return -np.log2(p), g_u * sgn, -g_u * sgn, g_logb


@njit(cache=True, parallel=True, fastmath=True)
def _arm_rate_kernel(
    flat, offs, shapes, parents, strides, phases, weights, tasks, bounds,
    ctx_off, par_off, w0t, b0, w1t, b1, w2t, b2, logb_lo, logb_hi, scale, max_m,
):  # fmt: skip
    """One task = the positions of one grid row. The row's contexts are gathered into a
    (N_CTX, m) matrix so that every layer, forward and backward, is a loop over positions
    (vectorised); per-position loops over the 16 hidden units were 10x slower. Part t
    (one per thread) takes tasks bounds[t]..bounds[t+1]."""
    n_ctx, a_n = w0t.shape
    n_sp = ctx_off.shape[0]
    n_thr = bounds.shape[0] - 1
    bits = np.zeros(n_thr, np.float64)
    g_flat = np.zeros((n_thr, flat.shape[0]), np.float32)
    gw0 = np.zeros((n_thr, n_ctx, a_n), np.float32)
    gb0 = np.zeros((n_thr, a_n), np.float32)
    gw1 = np.zeros((n_thr, a_n, a_n), np.float32)
    gb1 = np.zeros((n_thr, a_n), np.float32)
    gw2 = np.zeros((n_thr, a_n, 2), np.float32)
    gb2 = np.zeros((n_thr, 2), np.float32)
    for t in prange(n_thr):
        ctx = np.zeros((n_ctx, max_m), np.float32)
        where = np.empty((n_ctx, max_m), np.int64)  # flat index of a context value, -1: zero
        h1 = np.empty((a_n, max_m), np.float32)
        h2 = np.empty((a_n, max_m), np.float32)
        d1 = np.empty((a_n, max_m), np.float32)
        d2 = np.empty((a_n, max_m), np.float32)
        mu = np.empty(max_m, np.float32)
        lb = np.empty(max_m, np.float32)
        g_mu = np.empty(max_m, np.float32)
        g_lb = np.empty(max_m, np.float32)
        acc = np.empty(max_m, np.float32)
        gf = g_flat[t]
        for task in range(bounds[t], bounds[t + 1]):
            g, y = tasks[task, 0], tasks[task, 1]
            h, w = shapes[g, 0], shapes[g, 1]
            s, px = strides[g], phases[g, 1]
            base = offs[g]
            p = parents[g]
            m = (w - px + s - 1) // s
            for k in range(n_sp):
                yy = y + ctx_off[k, 0]
                for i in range(m):
                    xx = px + s * i + ctx_off[k, 1]
                    if 0 <= yy < h and 0 <= xx < w:
                        where[k, i] = base + yy * w + xx
                        ctx[k, i] = flat[base + yy * w + xx]
                    else:
                        where[k, i] = -1
                        ctx[k, i] = 0.0
            for k in range(par_off.shape[0]):
                for i in range(m):
                    if p < 0:
                        where[n_sp + k, i] = -1
                        ctx[n_sp + k, i] = 0.0
                    else:
                        hp, wp = shapes[p, 0], shapes[p, 1]
                        yy = min(max((y >> 1) + par_off[k, 0], 0), hp - 1)
                        xx = min(max(((px + s * i) >> 1) + par_off[k, 1], 0), wp - 1)
                        where[n_sp + k, i] = offs[p] + yy * wp + xx
                        ctx[n_sp + k, i] = flat[offs[p] + yy * wp + xx]
            for j in range(a_n):
                hj = h1[j, :m]
                hj[:] = b0[j]
                for k in range(n_ctx):
                    wv = w0t[k, j]
                    ck = ctx[k, :m]
                    for i in range(m):
                        hj[i] += wv * ck[i]
                for i in range(m):
                    hj[i] = max(hj[i], np.float32(0.0))
            for j in range(a_n):
                hj = h2[j, :m]
                hj[:] = b1[j]
                for k in range(a_n):
                    wv = w1t[k, j]
                    ck = h1[k, :m]
                    for i in range(m):
                        hj[i] += wv * ck[i]
                for i in range(m):
                    hj[i] = max(hj[i], np.float32(0.0))
            mu[:m] = b2[0]
            lb[:m] = b2[1]
            for k in range(a_n):
                wa, wb = w2t[k, 0], w2t[k, 1]
                hk = h2[k, :m]
                for i in range(m):
                    mu[i] += wa * hk[i]
                    lb[i] += wb * hk[i]
            wt = weights[g]
            sw = scale * wt
            row = base + y * w
            tb = 0.0
            for i in range(m):
                iv = row + px + s * i
                nb, gv, gm, gl = _neg_log2_laplace(flat[iv], mu[i], lb[i], logb_lo, logb_hi)
                tb += nb
                gf[iv] += sw * gv
                g_mu[i] = sw * gm
                g_lb[i] = sw * gl
            bits[t] += wt * tb
            if scale == 0.0:
                continue
            s0 = np.float32(0.0)
            s1 = np.float32(0.0)
            for i in range(m):
                s0 += g_mu[i]
                s1 += g_lb[i]
            gb2[t, 0] += s0
            gb2[t, 1] += s1
            for j in range(a_n):
                wa, wb = w2t[j, 0], w2t[j, 1]
                hj = h2[j, :m]
                dj = d2[j, :m]
                s0 = np.float32(0.0)
                s1 = np.float32(0.0)
                s2 = np.float32(0.0)
                for i in range(m):
                    s0 += g_mu[i] * hj[i]
                    s1 += g_lb[i] * hj[i]
                    v = wa * g_mu[i] + wb * g_lb[i]
                    dj[i] = v if hj[i] > 0 else np.float32(0.0)
                    s2 += dj[i]
                gw2[t, j, 0] += s0
                gw2[t, j, 1] += s1
                gb1[t, j] += s2
            for k in range(a_n):
                hk = h1[k, :m]
                acc[:m] = 0.0
                for j in range(a_n):
                    dj = d2[j, :m]
                    wv = w1t[k, j]
                    s0 = np.float32(0.0)
                    for i in range(m):
                        s0 += hk[i] * dj[i]
                        acc[i] += wv * dj[i]
                    gw1[t, k, j] += s0
                dk = d1[k, :m]
                s0 = np.float32(0.0)
                for i in range(m):
                    dk[i] = acc[i] if hk[i] > 0 else np.float32(0.0)
                    s0 += dk[i]
                gb0[t, k] += s0
            for k in range(n_ctx):
                ck = ctx[k, :m]
                acc[:m] = 0.0
                for j in range(a_n):
                    dj = d1[j, :m]
                    wv = w0t[k, j]
                    s0 = np.float32(0.0)
                    for i in range(m):
                        s0 += ck[i] * dj[i]
                        acc[i] += wv * dj[i]
                    gw0[t, k, j] += s0
                for i in range(m):
                    wi = where[k, i]
                    if wi >= 0:
                        gf[wi] += acc[i]
    return (
        bits.sum(), g_flat.sum(axis=0), gw0.sum(axis=0), gb0.sum(axis=0),
        gw1.sum(axis=0), gb1.sum(axis=0), gw2.sum(axis=0), gb2.sum(axis=0),
    )  # fmt: skip


def arm_rate(
    grids: list[np.ndarray],
    parents: list[int],
    strides: list[int],
    phases: list[tuple[int, int]],
    layers: list[tuple[np.ndarray, np.ndarray]],
    logb_range: tuple[float, float],
    scale: float,
    ctx_offsets: np.ndarray,
    parent_offsets: np.ndarray,
    backend: str | None = None,
) -> tuple[float, list[np.ndarray], list[np.ndarray]]:
    """Estimated bits of the latents under the float ARM (model.rate_bits): each grid at the
    positions ``phase + stride * (i, j)``, weighted by (grid size / positions); with ``scale``
    non-zero, the gradients of ``scale * bits`` for every grid and for the ARM layers
    ``[(w, b), ...]`` (nn.Linear layout, three layers).

    The per-position MLP, its backward pass and the scatter of the context gradients run in
    one pass, where autograd spent ~80 ms per Kodak step on slices, index_select scatters and
    concatenations of the (positions x 17) context matrix.

    >>> import numpy as np
    >>> from neural_memory.lossy.decoding.arm import CTX_OFFSETS, PARENT_OFFSETS
    >>> layers = [(np.zeros((4, 17), np.float32), np.zeros(4, np.float32)),
    ...           (np.zeros((4, 4), np.float32), np.zeros(4, np.float32)),
    ...           (np.zeros((2, 4), np.float32), np.zeros(2, np.float32))]
    >>> bits, _, _ = arm_rate([np.zeros((3, 3), np.float32)], [-1], [1], [(0, 0)], layers,
    ...                       (-3.5, 3.4), 0.0, CTX_OFFSETS, PARENT_OFFSETS)
    >>> round(bits, 3)  # 9 zeros at b = 1: P(0) = 1 - exp(-0.5)
    12.111
    """
    offs = np.cumsum([0] + [g.size for g in grids]).astype(np.int64)
    flat = np.concatenate([g.ravel() for g in grids]).astype(np.float32, copy=False)
    shapes = np.array([g.shape for g in grids], np.int64)
    weights = np.empty(len(grids), np.float32)
    tasks, sizes = [], []  # one task per grid row: (grid, row), and its position count
    for g, (grid, s, (py, px)) in enumerate(zip(grids, strides, phases, strict=True)):
        h, w = grid.shape
        rows = range(py, h, s)
        cols = len(range(px, w, s))
        weights[g] = grid.size / max(1, len(rows) * cols)
        tasks += [(g, y) for y in rows]
        sizes += [cols] * len(rows)
    # split the tasks into ARM_PARTS parts of equal position counts (rows differ 100-fold)
    cum = np.cumsum([0, *sizes])
    bounds = np.searchsorted(cum, np.linspace(0, cum[-1], ARM_PARTS + 1)).astype(np.int64)
    bounds[0], bounds[-1] = 0, len(tasks)
    backend = backend or BACKEND
    if backend != "numba":
        bits, g_flat, g_layers = _arm_rate_c(
            flat, offs, shapes, parents, strides, phases, weights, tasks, bounds, layers,
            logb_range, scale, ctx_offsets, parent_offsets, backend,
        )  # fmt: skip
        g_grids = [g_flat[offs[i] : offs[i + 1]].reshape(g.shape) for i, g in enumerate(grids)]
        return bits, g_grids, g_layers
    (w0, b0), (w1, b1), (w2, b2) = layers
    out = _arm_rate_kernel(
        flat, offs[:-1].copy(), shapes, np.array(parents, np.int64),
        np.array(strides, np.int64), np.array(phases, np.int64).reshape(-1, 2), weights,
        np.array(tasks, np.int64).reshape(-1, 2), bounds, ctx_offsets, parent_offsets,
        np.ascontiguousarray(w0.T), b0, np.ascontiguousarray(w1.T), b1,
        np.ascontiguousarray(w2.T), b2, float(logb_range[0]), float(logb_range[1]),
        float(scale), int(shapes[:, 1].max()),
    )  # fmt: skip
    bits, g_flat, gw0, gb0, gw1, gb1, gw2, gb2 = out
    g_grids = [g_flat[offs[i] : offs[i + 1]].reshape(grid.shape) for i, grid in enumerate(grids)]
    return float(bits), g_grids, [gw0.T, gb0, gw1.T, gb1, gw2.T, gb2]


# ---- the C kernels (native/train/) ---------------------------------------------------------
# Each call of the extension computes one part (a fixed range of pixel blocks or ARM tasks)
# with the GIL released; parts run on a small thread pool and their sums are added in part
# order, so the result does not depend on the number of threads.
_POOL: ThreadPoolExecutor | None = None
_POOL_PID = 0  # a forked child inherits the pool object but not its threads: make a new one


def threads() -> int:
    """Threads for the C kernels: numba's thread count, capped by torch's when torch is in
    use (the encoder's ``threads`` option sets torch's)."""
    n = numba.get_num_threads()
    torch = sys.modules.get("torch")
    if torch is not None:
        n = min(n, torch.get_num_threads())
    return max(1, n)


def _run_parts(fn, n_parts: int) -> list:
    """[fn(0), ..., fn(n_parts - 1)], on up to threads() threads."""
    global _POOL, _POOL_PID
    n = min(threads(), n_parts)
    if n <= 1:
        return [fn(i) for i in range(n_parts)]
    if _POOL is None or _POOL._max_workers != n or os.getpid() != _POOL_PID:
        if _POOL is not None and os.getpid() == _POOL_PID:
            _POOL.shutdown(wait=False)
        _POOL = ThreadPoolExecutor(n, thread_name_prefix="nm-train")
        _POOL_PID = os.getpid()
    return list(_POOL.map(fn, range(n_parts)))


def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, np.float32)


def _in_order(rows: np.ndarray) -> np.ndarray:
    """Sum of the rows of (parts, ...) in part order."""
    total = rows[0].copy()
    for r in rows[1:]:
        total += r
    return total


def proxy_c(
    y: np.ndarray, noise: np.ndarray, t: float, backend: str | None = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """The rounding proxy and its derivative (train.proxy_and_derivative with noise and
    t > 0) in one C pass over float32 arrays; None with the numba backend.

    Why: in torch the same arithmetic is a dozen element-wise passes over every latent
    (with two tanh), 3.9 ms of a 35 ms two-thread step on kodim23 (cProfile, 2026-12-05)."""
    cap = _up_cap(backend)
    if cap is None:
        return None
    p, d = np.empty_like(y), np.empty_like(y)
    _train_native.proxy(y, noise, p, d, float(t), cap)
    return p, d


def gauss_c(
    shape: tuple[int, ...], sigma: float, key: int, backend: str | None = None
) -> np.ndarray | None:
    """``sigma`` times standard normal samples of ``shape`` (float32) that depend only on the
    64-bit ``key`` and each sample's index (a counter-based hash and an inverse normal CDF, in
    C); None with the numba backend.

    Why not torch.randn: the training step draws one sample per latent (590 k on a Kodak
    image), 2.7 ms of a 54 ms two-thread step on kodim23 (cProfile, 2026-12-06); here 1.4 ms
    on one thread. (Making the samples inside the proxy's pass instead of storing them was
    tried: 2.79 against 2.80 ms for noise and proxy, so the proxy reads them from memory.)"""
    cap = _up_cap(backend)
    if cap is None:
        return None
    out = np.empty(shape, np.float32)
    _train_native.gauss(out, 0, float(sigma), key, cap)
    return out


def adam_c(
    p: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    grad: tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None],
    step: float,
    betas: tuple[float, float],
    c2: float,
    eps: float,
    backend: str | None = None,
) -> bool:
    """One Adam update of the float32 arrays ``p``, ``m``, ``v`` in place (optim.Adam's rule)
    with the gradient ``g1 * d1 + g2 * d2`` of ``grad = (g1, d1, g2, d2)`` (``d1`` None:
    ``g1`` alone; ``g2``, ``d2`` None: no second term), in one C pass; False (nothing done)
    with the numba backend.

    Why: the latents are most of the parameters (590 k on a Kodak image); in torch, chaining
    the two gradients through the proxies' derivatives and the Adam update are nine passes
    over them, 3-4 ms of a 54 ms two-thread step on kodim23 (cProfile, 2026-12-06)."""
    cap = _up_cap(backend)
    if cap is None:
        return False
    g1, d1, g2, d2 = grad
    b1, b2 = betas  # 1 - b in double, as torch's alpha: 1 - float32(0.999) is 1.3e-5 off
    _train_native.adam(p, m, v, g1, d1, g2, d2, step, b1, 1 - b1, b2, 1 - b2, c2, eps, cap)
    return True


def _up_cap(backend: str | None) -> int | None:
    """The ISA cap of the C kernels the module calls directly (upsampler, rounding proxy) for
    ``backend`` (default BACKEND), None for numba."""
    backend = backend or BACKEND
    return None if backend == "numba" else _CAPS[backend]


def _up_rows_c(src, rows, out, te: np.ndarray, cap: int, adjoint: bool) -> None:
    """up_rows (or, with ``adjoint``, up_rows_adjoint) in C, one channel per part: every
    output element is one fixed sum whichever thread computes it. Forward: src (C, h, W) ->
    the first C channels of out (C', len(rows), W); adjoint: the first C channels of src
    (C', len(rows), W) added into out (C, h, W)."""
    src = _f32(src)
    rows = np.ascontiguousarray(rows, np.int64)
    if not (out.flags.c_contiguous and out.dtype == np.float32):
        raise ValueError("out must be a contiguous float32 array")
    coarse = out if adjoint else src
    n_c, h, w = coarse.shape
    fn = _train_native.up_rows_adjoint if adjoint else _train_native.up_rows

    def part(c: int) -> None:
        fn(src, h, w, rows, out, c, c + 1, te, cap)

    _run_parts(part, n_c)


def _synth_sse_c(feat, target, w1, b1, w2, b2, scale, grad_feat, backend):
    """synth_sse in the C kernel: SYNTH_PARTS parts of whole blocks of SYN_BLOCK pixels."""
    nat = _train_native
    g_n, n = feat.shape
    h_n, c_n = w1.shape[0], w2.shape[0]
    feat, target = _f32(feat), _f32(target)
    w1, b1, w2, b2 = _f32(w1), _f32(b1), _f32(w2), _f32(b2)
    if grad_feat is not None and not (
        grad_feat.flags.c_contiguous and grad_feat.dtype == np.float32
    ):
        raise ValueError("grad_feat must be a contiguous float32 array")
    n_blocks = -(-n // nat.SYN_BLOCK)
    per = -(-n_blocks // SYNTH_PARTS)
    bounds = [min(n_blocks, t * per) for t in range(SYNTH_PARTS + 1)]
    sizes = (h_n * g_n, h_n, c_n * h_n, c_n)
    outs = np.zeros((SYNTH_PARTS, sum(sizes)), np.float32)
    cap = _CAPS[backend]

    def part(t: int) -> float:
        return nat.synth_part(
            feat, target, w1, b1, w2, b2, grad_feat, outs[t], g_n, c_n, h_n, n,
            bounds[t], bounds[t + 1], float(scale), cap,
        )  # fmt: skip

    sse = 0.0
    for s in _run_parts(part, SYNTH_PARTS):
        sse += s
    tot = _in_order(outs)
    cut = np.cumsum(sizes)[:-1]
    gw1, gb1, gw2, gb2 = np.split(tot, cut)
    return sse, [gw1.reshape(h_n, g_n), gb1, gw2.reshape(c_n, h_n), gb2]


def _arm_rate_c(
    flat, offs, shapes, parents, strides, phases, weights, tasks, bounds, layers,
    logb_range, scale, ctx_offsets, parent_offsets, backend,
):  # fmt: skip
    """arm_rate's kernel in C: ARM_PARTS parts of tasks, each with its own gradient grids."""
    nat = _train_native
    (w0, b0), (w1, b1), (w2, b2) = ((_f32(w), _f32(b)) for w, b in layers)
    a_n, n_ctx = w0.shape
    i64 = np.int64
    tables = (
        _f32(flat), np.ascontiguousarray(offs[:-1], i64), np.ascontiguousarray(shapes, i64),
        np.array(parents, i64), np.array(strides, i64),
        np.array(phases, i64).reshape(-1, 2), _f32(weights),
        np.array(tasks, i64).reshape(-1, 2), np.ascontiguousarray(ctx_offsets, i64),
        np.ascontiguousarray(parent_offsets, i64),
    )  # fmt: skip
    want = scale != 0.0
    g_parts = np.empty((ARM_PARTS, flat.shape[0]), np.float32) if want else None  # zeroed in C
    sizes = (n_ctx * a_n, a_n, a_n * a_n, a_n, a_n * 2, 2)
    outs = np.zeros((ARM_PARTS, sum(sizes)), np.float32)
    cap = _CAPS[backend]
    lo, hi = float(logb_range[0]), float(logb_range[1])

    def part(t: int) -> float:
        return nat.arm_part(
            *tables, w0, b0, w1, b1, w2, b2, None if g_parts is None else g_parts[t], outs[t],
            a_n, int(bounds[t]), int(bounds[t + 1]), lo, hi, float(scale), cap,
        )  # fmt: skip

    bits = 0.0
    for b in _run_parts(part, ARM_PARTS):
        bits += b
    if want:  # sum_rows writes every element
        g_flat = np.empty(flat.shape[0], np.float32)
        nat.sum_rows(g_parts, g_flat, ARM_PARTS)
    else:
        g_flat = np.zeros(flat.shape[0], np.float32)
    gw0, gb0, gw1, gb1, gw2, gb2 = np.split(_in_order(outs), np.cumsum(sizes)[:-1])
    gw0, gw1, gw2 = gw0.reshape(n_ctx, a_n), gw1.reshape(a_n, a_n), gw2.reshape(a_n, 2)
    return bits, g_flat, [gw0.T, gb0, gw1.T, gb1, gw2.T, gb2]
