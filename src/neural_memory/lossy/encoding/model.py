"""The trainable representation (PyTorch): latent pyramid, learned pre-concatenation filters
(ArchConfig.prefilter, payload version 4), fixed upsampler (the filters of
ArchConfig.up_table), synthesis MLP and ARM. The float forward mirrors the integer decoder
of fixed_point.py / arm.py up to rounding of the fixed-point intermediates."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from neural_memory.entropy.laplace import LOGB_MIN, LOGB_STEP, NSCALE
from neural_memory.lossy.decoding.arm import (
    CTX_OFFSETS,
    N_CTX,
    N_PARENT,
    PAD,
    PARENT_OFFSETS,
    parent_grids,
)
from neural_memory.lossy.decoding.bitstream import ArchConfig, prefilter_kernel
from neural_memory.lossy.decoding.fixed_point import level_shapes, stage_taps

LOGB_MAX = LOGB_MIN + (NSCALE - 1) * LOGB_STEP
# pixels per block of the distortion (a full Kodak image, 393 k pixels, is one block)
CHUNK_PIXELS = 1 << 19
# fraction bits of the stored pre-concatenation filter taps (payload version 4)
PREFILTER_Q = 8


class CodecModel(nn.Module):
    def __init__(self, height: int, width: int, arch: ArchConfig):
        super().__init__()
        self.arch = arch
        self.height, self.width = height, width
        self.n_levels = max(arch.grid_levels) + 1
        self.shapes = level_shapes(height, width, self.n_levels)  # per level
        self.grid_shapes = [self.shapes[lv] for lv in arch.grid_levels]
        self.latents = nn.ParameterList(
            [nn.Parameter(torch.zeros(h, w)) for h, w in self.grid_shapes]
        )
        widths = [arch.n_grids, *arch.syn_hidden, arch.channels]
        self.syn = nn.ModuleList(
            nn.Linear(widths[i], widths[i + 1]) for i in range(len(widths) - 1)
        )
        a = arch.arm_hidden
        self.arm = nn.ModuleList([nn.Linear(N_CTX, a), nn.Linear(a, a), nn.Linear(a, 2)])
        self.use_kernels = True  # see fused_cpu
        self.parents = parent_grids(arch.grid_levels)
        # per stage (level s + 1 -> s): the even and odd phases' taps of arch.up_table's filters
        even = torch.tensor(stage_taps(arch.up_table), dtype=torch.float32) / 256.0
        taps = torch.stack([even, even.flip(1)], dim=1)  # (stages, 2, 4)
        self.register_buffer("k_rows", taps.reshape(-1, 2, 1, 4, 1))
        self.register_buffer("k_cols", taps.reshape(-1, 2, 1, 1, 4))
        # pre-concatenation filters (payload version 4): per level (a, b, c, d) of the kernel
        # (a, b, c, d, c, b, a) / sum, the identity at the start; trained with the synthesis,
        # then rounded by quantize.quantise_prefilter (prefilter_ints), used from then on
        self.prefilter: nn.Parameter | None = None
        self.prefilter_ints: np.ndarray | None = None
        if arch.prefilter:
            start = torch.zeros(self.n_levels, 4)
            start[:, 3] = 1.0
            self.prefilter = nn.Parameter(start)
        with torch.no_grad():
            self.syn[-1].bias.fill_(0.5)
            self.arm[-1].weight.mul_(0.1)
            self.arm[-1].bias.copy_(torch.tensor([0.0, 0.0]))

    # ---- upsampling -------------------------------------------------------------------------
    def _up_rows(self, x: torch.Tensor, n_out: int, stage: int) -> torch.Tensor:
        """2x along axis 1 of (c, h, w) with stage ``stage``'s filters, cropped to n_out."""
        c, h, w = x.shape
        xp = F.pad(x[None], (0, 0, 2, 2), mode="replicate")[0]
        o = F.conv2d(xp[:, None], self.k_rows[stage])  # (c, 2, h+1, w)
        y = torch.stack([o[:, 0, :h], o[:, 1, 1 : h + 1]], dim=2).reshape(c, 2 * h, w)
        return y[:, :n_out]

    def _up_cols(self, x: torch.Tensor, n_out: int, stage: int) -> torch.Tensor:
        """As :meth:`_up_rows`, along axis 2."""
        c, h, w = x.shape
        xp = F.pad(x[None], (2, 2, 0, 0), mode="replicate")[0]
        o = F.conv2d(xp[:, None], self.k_cols[stage])  # (c, 2, h, w+1)
        y = torch.stack([o[:, 0, :, :w], o[:, 1, :, 1 : w + 1]], dim=3).reshape(c, h, 2 * w)
        return y[:, :, :n_out]

    def _axis_matrices(self) -> None:
        """Dense per-axis operators of the recursive upsampler: level i's features are
        R_i @ y_i @ C_i^T. The recursion is separable and linear, so pushing identity
        matrices through it gives the exact operators; BLAS matmuls with them are ~20x faster
        than the strided convolutions on this CPU."""
        rows, cols = [], []
        dev = self.k_rows.device
        for i, (h, w) in enumerate(self.shapes):
            r = torch.eye(h, device=dev)[:, :, None]  # (h, h, 1): channel k = unit vector k
            c = torch.eye(w, device=dev)[:, None, :]
            for j in range(i - 1, -1, -1):
                r = self._up_rows(r, self.shapes[j][0], j)
                c = self._up_cols(c, self.shapes[j][1], j)
            rows.append(r[:, :, 0].T.contiguous())  # (H, h)
            cols.append(c[:, 0, :].T.contiguous())  # (W, w)
        self.up_rows_m, self.up_cols_m = rows, cols

    # ---- pre-concatenation filters ----------------------------------------------------------
    def prefilter_kernels(self) -> torch.Tensor:
        """(levels, 7) taps of each level's separable filter (DC gain 1): the rounded ones
        once quantize.quantise_prefilter has run, else the trainable ones (with their graph)."""
        if self.prefilter_ints is not None:
            k = [prefilter_kernel(abc, PREFILTER_Q) for abc in self.prefilter_ints]
            return torch.tensor(np.array(k), dtype=torch.float32) / 2.0**PREFILTER_Q
        p = self.prefilter
        k = torch.cat([p, p[:, :3].flip(1)], dim=1)
        return k / k.sum(dim=1, keepdim=True)

    def prefilter_grids(self, ys: list[torch.Tensor]) -> list[torch.Tensor]:
        """Each grid filtered by its level's kernel, replicate border (autograd)."""
        kern = self.prefilter_kernels().to(ys[0].device)
        out = []
        for y, lv in zip(ys, self.arch.grid_levels, strict=True):
            k = kern[lv]
            x = F.pad(y[None, None], (3, 3, 3, 3), mode="replicate")
            x = F.conv2d(x, k.reshape(1, 1, 1, 7))
            out.append(F.conv2d(x, k.reshape(1, 1, 7, 1))[0, 0])
        return out

    def upsample(self, ys: list[torch.Tensor], rows: torch.Tensor | None = None) -> torch.Tensor:
        """(G, H, W) features in grid order (or (G, len(rows), W) for a subset of rows)."""
        if not hasattr(self, "up_rows_m") or self.up_rows_m[0].device != ys[0].device:
            self._axis_matrices()  # (again after the model moved to another device)
        if self.arch.prefilter:
            ys = self.prefilter_grids(ys)
        out: list[torch.Tensor | None] = [None] * len(ys)
        for lv in range(self.n_levels):
            idx = [g for g, glv in enumerate(self.arch.grid_levels) if glv == lv]
            if not idx:
                continue
            # gain 2**-lv: a level-lv latent is quantised with a 2**lv finer step (it spreads
            # over 4**lv pixels); the gain keeps synthesis weights of all grids alike in size,
            # so one power-of-two step per layer suits them all
            y = torch.stack([ys[g] for g in idx]) * (2.0**-lv)
            if lv == 0:
                f = y if rows is None else y[:, rows]
            else:
                r = self.up_rows_m[lv] if rows is None else self.up_rows_m[lv][rows]
                f = r @ y @ self.up_cols_m[lv].T
            for k, g in enumerate(idx):
                out[g] = f[k]
        return torch.stack(out)

    # ---- synthesis --------------------------------------------------------------------------
    def synth(self, x: torch.Tensor) -> torch.Tensor:
        """Per-pixel MLP, channels first: (L, N) -> (C, N) (no transpose of the big tensor)."""
        for i, layer in enumerate(self.syn):
            x = torch.addmm(layer.bias[:, None], layer.weight, x)
            if i < len(self.syn) - 1:
                x = F.relu(x, inplace=True)  # a fresh 40 MB tensor costs ~80 ms here (page faults)
        return x

    def squared_error(
        self,
        ys: list[torch.Tensor],
        target_hw: torch.Tensor,
        rows: torch.Tensor | None = None,
        chunk_pixels: int = CHUNK_PIXELS,
        backward_scale: float | None = None,
    ) -> float:
        """Sum of squared errors of the reconstruction against ``target_hw`` (C, H, W) over
        ``rows`` (all rows if None), computed in blocks of about ``chunk_pixels`` pixels.

        Why blocks: the activations of a whole large image (the upsampled grids, the hidden
        layer and their gradients) take ~1.6 KB per pixel, 6.6 GB for 2048 x 2048; a block
        bounds them whatever the image size. With ``backward_scale`` set, each block's
        ``backward_scale * SSE`` is back-propagated right away (into the synthesis weights and
        the ``ys`` leaves' ``.grad``), so the graph of one block is freed before the next."""
        if rows is None:
            rows = torch.arange(self.height, device=target_hw.device)
        per_block = max(1, chunk_pixels // self.width)
        if self.fused_cpu:
            return self._squared_error_fused(ys, target_hw, rows, per_block, backward_scale)
        return self._squared_error_autograd(ys, target_hw, rows, per_block, backward_scale)

    def _squared_error_autograd(
        self,
        ys: list[torch.Tensor],
        target_hw: torch.Tensor,
        rows: torch.Tensor,
        per_block: int,
        backward_scale: float | None,
    ) -> float:
        """squared_error through PyTorch's operators (any device, depth or dtype)."""
        total = 0.0
        for start in range(0, rows.shape[0], per_block):
            r = rows[start : start + per_block]
            whole = r.shape[0] == self.height
            feat = self.upsample(ys, None if whole else r)
            pred = self.synth(feat.reshape(feat.shape[0], -1))
            tgt = target_hw if whole else target_hw[:, r]
            se = ((pred - tgt.reshape(tgt.shape[0], -1)) ** 2).sum()
            if backward_scale is not None:
                (se * backward_scale).backward()
            total += float(se.detach())
        return total

    @property
    def fused_cpu(self) -> bool:
        """Whether training runs in the kernels of train_kernels.py (CPU, float32, one hidden
        synthesis layer: the trained presets) rather than through autograd."""
        return (
            self.use_kernels
            and len(self.syn) == 2
            and self.syn[0].weight.device.type == "cpu"
            and self.syn[0].weight.dtype == torch.float32
        )

    def _squared_error_fused(
        self,
        ys: list[torch.Tensor],
        target_hw: torch.Tensor,
        rows: torch.Tensor,
        per_block: int,
        backward_scale: float | None,
    ) -> float:
        """squared_error in the fused kernels; gradients are accumulated into ``.grad`` of the
        synthesis parameters and of the ``ys`` (which must then be leaves)."""
        from neural_memory.lossy.encoding import train_kernels as tk
        from neural_memory.lossy.encoding.prefilter import Prefilter

        if not hasattr(self, "_upsampler"):
            self._upsampler = tk.Upsampler(
                self.arch.grid_levels, self.height, self.width, self.arch.up_table
            )
        up = self._upsampler
        grids = [y.detach().numpy() for y in ys]
        filtered = None  # version 4: the grids through their level's filters (prefilter.py)
        if self.arch.prefilter:
            if not hasattr(self, "_prefilter"):
                self._prefilter = Prefilter(self.arch.grid_levels, self.grid_shapes)
            kern = self.prefilter_kernels()
            grids, filtered = self._prefilter.forward(grids, kern.detach().numpy())
        order = up.order
        l1, l2 = self.syn
        w1 = l1.weight.detach().numpy()[:, order]  # fancy indexing: already a fresh array
        b1, w2, b2 = (t.detach().numpy() for t in (l1.bias, l2.weight, l2.bias))
        target = target_hw.numpy()
        want = backward_scale is not None
        scale = 0.0 if backward_scale is None else float(backward_scale)
        coarse = up.coarse(grids)
        g_coarse = None if coarse is None or not want else np.zeros_like(coarse)
        g_grids = [np.zeros_like(g) for g in grids] if want else []
        sums = [np.zeros_like(t.detach().numpy()) for t in (l1.weight, l1.bias, l2.weight, l2.bias)]
        rows_np = rows.numpy()
        total = 0.0
        for start in range(0, rows_np.shape[0], per_block):
            r = rows_np[start : start + per_block]
            if r.shape[0] == target.shape[1] and (r == np.arange(r.shape[0])).all():
                tgt = target.reshape(target.shape[0], -1)  # all rows: no 4.7 MB copy per step
            else:
                tgt = np.ascontiguousarray(target[:, r]).reshape(target.shape[0], -1)
            sse, grads = tk.synth_sse_rows(
                up, coarse, grids, r, tgt, w1, b1, w2, b2, scale, g_coarse,
                g_grids if want else None,
            )  # fmt: skip
            total += sse
            if want:
                sums[0][:, order] += grads[0]
                for acc, g in zip(sums[1:], grads[1:], strict=True):
                    acc += g
        if want:
            up.coarse_adjoint(g_coarse, g_grids)
            if filtered is not None:
                g_grids, g_k = self._prefilter.backward(g_grids, filtered)
                if kern.requires_grad:
                    kern.backward(torch.from_numpy(g_k).to(kern.dtype))
            _accumulate_grads([l1.weight, l1.bias, l2.weight, l2.bias, *ys], [*sums, *g_grids])
        return total

    # ---- entropy model ----------------------------------------------------------------------
    def contexts(
        self, ys: list[torch.Tensor], g: int, stride: int = 1, phase: tuple[int, int] = (0, 0)
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """ARM inputs ``(n, N_CTX)`` and values ``(n,)`` of grid ``g`` at the positions
        ``(phase[0] + stride * i, phase[1] + stride * j)``: causal neighbours in the grid
        (zero outside), then the parent grid around (y // 2, x // 2) (clamped; zero without a
        parent), exactly as the integer ARM of arm.py reads them.

        Why slices and not a gather of random positions: the backward of a strided slice is a
        cheap strided copy, that of an element gather a serial scatter-add, which cost a fifth
        of a training step."""
        y = ys[g]
        h, w = y.shape
        py, px = phase
        yp = F.pad(y, (PAD, PAD, PAD, 0))
        cols = [
            yp[PAD + dy + py : PAD + dy + h : stride, PAD + dx + px : PAD + dx + w : stride]
            for dy, dx in CTX_OFFSETS.tolist()
        ]
        vals = y[py::stride, px::stride]
        p = self.parents[g]
        if p < 0:
            cols += [vals.new_zeros(vals.shape)] * N_PARENT
        else:
            par = ys[p]
            hp, wp = par.shape
            rows = torch.arange(py, h, stride, device=y.device) >> 1
            cs = torch.arange(px, w, stride, device=y.device) >> 1
            for dy, dx in PARENT_OFFSETS.tolist():
                ri = (rows + dy).clamp(0, hp - 1)
                ci = (cs + dx).clamp(0, wp - 1)
                cols.append(par.index_select(0, ri).index_select(1, ci))
        return torch.stack(cols, dim=-1).reshape(-1, N_CTX), vals.reshape(-1)

    def arm_forward(self, ctx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.relu(self.arm[0](ctx))
        x = F.relu(self.arm[1](x))
        o = self.arm[2](x)
        return o[:, 0], o[:, 1].clamp(LOGB_MIN, LOGB_MAX)

    def rate_bits(
        self, ys: list[torch.Tensor], stride: int = 1, gen: torch.Generator | None = None
    ) -> torch.Tensor:
        """Estimated bits of all latents. With ``stride`` > 1, each grid of more than 4096
        latents is estimated on one random phase of a ``stride`` x ``stride`` lattice, scaled
        up (unbiased over the random phase)."""
        ctxs, vals, weights = [], [], []
        for g, (y, s, phase) in enumerate(zip(ys, *lattice_phases(ys, stride, gen), strict=True)):
            ctx, v = self.contexts(ys, g, s, phase)
            ctxs.append(ctx)
            vals.append(v)
            weights.append(torch.full((v.shape[0],), y.numel() / v.shape[0], device=y.device))
        mu, logb = self.arm_forward(torch.cat(ctxs))
        p = laplace_prob(torch.cat(vals), mu, logb)
        return (torch.cat(weights) * -torch.log2(p)).sum()

    def rate_bits_fused(
        self,
        ys: list[torch.Tensor],
        stride: int = 1,
        gen: torch.Generator | None = None,
        scale: float = 0.0,
    ) -> tuple[float, list[torch.Tensor]]:
        """:meth:`rate_bits` (same positions, same random phases) in the kernel of
        train_kernels.py. With ``scale`` non-zero it also returns the gradients of
        ``scale * bits`` with respect to ``ys`` and accumulates those of the ARM weights into
        their ``.grad``."""
        from neural_memory.lossy.encoding import train_kernels as tk

        strides, phases = lattice_phases(ys, stride, gen)
        layers = [(m.weight.detach().numpy(), m.bias.detach().numpy()) for m in self.arm]
        bits, g_grids, g_layers = tk.arm_rate(
            [y.detach().numpy() for y in ys], list(self.parents), strides, phases, layers,
            (LOGB_MIN, LOGB_MAX), scale, CTX_OFFSETS, PARENT_OFFSETS,
        )  # fmt: skip
        if scale:
            params = [t for m in self.arm for t in (m.weight, m.bias)]
            _accumulate_grads(params, [np.ascontiguousarray(g) for g in g_layers])
        return bits, [torch.from_numpy(g) for g in g_grids]


def lattice_phases(
    ys: list[torch.Tensor], stride: int, gen: torch.Generator | None
) -> tuple[list[int], list[tuple[int, int]]]:
    """Per grid, the lattice stride of the rate estimate (``stride`` for grids of more than
    4096 latents, else 1) and a random phase of it: what rate_bits and rate_bits_fused both
    evaluate, drawn from ``gen`` in the same order."""
    strides, phases = [], []
    for y in ys:
        s = stride if y.numel() > 4096 else 1
        phase = (0, 0)
        if s > 1:
            phase = tuple(int(v) for v in torch.randint(0, s, (2,), generator=gen))
        strides.append(s)
        phases.append(phase)
    return strides, phases


def _accumulate_grads(params: list[torch.Tensor], grads: list[np.ndarray]) -> None:
    """Add gradients computed outside autograd (numpy arrays) into ``.grad``."""
    for p, g in zip(params, grads, strict=True):
        t = torch.from_numpy(g)
        p.grad = t if p.grad is None else p.grad + t


def laplace_prob(v: torch.Tensor, mu: torch.Tensor, logb: torch.Tensor) -> torch.Tensor:
    """P(round(v)) under a Laplace(mu, exp(logb)) discretised to unit bins, floored at 2**-16."""
    inv_b = torch.exp(-logb)
    d = v - mu
    a = (d.abs() - 0.5) * inv_b  # distance of the bin's near edge
    # mass of [|d|-0.5, |d|+0.5] on one side: 0.5*(exp(-a) - exp(-a - 1/b)); near 0 split
    upper = 0.5 * torch.exp(-(d.abs() + 0.5) * inv_b)
    lower = torch.where(
        a > 0, 0.5 * torch.exp(-a.clamp(min=0)), 1.0 - 0.5 * torch.exp(a.clamp(max=0))
    )
    return (lower - upper).clamp(min=2.0**-16)
