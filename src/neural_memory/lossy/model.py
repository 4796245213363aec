"""The trainable representation (PyTorch): latent pyramid, fixed bicubic upsampler, synthesis
MLP and ARM. The float forward mirrors the integer decoder of fixed_point.py / arm.py up to
rounding of the fixed-point intermediates."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from neural_memory.entropy.laplace import LOGB_MIN, LOGB_STEP, NSCALE
from neural_memory.lossy.arm import CTX_OFFSETS, N_CTX, N_PARENT, PAD, PARENT_OFFSETS, parent_grids
from neural_memory.lossy.bitstream import ArchConfig
from neural_memory.lossy.fixed_point import TAPS_EVEN, TAPS_ODD, level_shapes

LOGB_MAX = LOGB_MIN + (NSCALE - 1) * LOGB_STEP


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
        self.parents = parent_grids(arch.grid_levels)
        self.par_dy = torch.from_numpy(PARENT_OFFSETS[:, 0].copy())
        self.par_dx = torch.from_numpy(PARENT_OFFSETS[:, 1].copy())
        taps = torch.tensor([TAPS_EVEN, TAPS_ODD], dtype=torch.float32) / 256.0
        self.register_buffer("k_rows", taps.reshape(2, 1, 4, 1))
        self.register_buffer("k_cols", taps.reshape(2, 1, 1, 4))
        with torch.no_grad():
            self.syn[-1].bias.fill_(0.5)
            self.arm[-1].weight.mul_(0.1)
            self.arm[-1].bias.copy_(torch.tensor([0.0, 0.0]))

    # ---- upsampling -------------------------------------------------------------------------
    def _up_rows(self, x: torch.Tensor, n_out: int) -> torch.Tensor:
        c, h, w = x.shape
        xp = F.pad(x[None], (0, 0, 2, 2), mode="replicate")[0]
        o = F.conv2d(xp[:, None], self.k_rows)  # (c, 2, h+1, w)
        y = torch.stack([o[:, 0, :h], o[:, 1, 1 : h + 1]], dim=2).reshape(c, 2 * h, w)
        return y[:, :n_out]

    def _up_cols(self, x: torch.Tensor, n_out: int) -> torch.Tensor:
        c, h, w = x.shape
        xp = F.pad(x[None], (2, 2, 0, 0), mode="replicate")[0]
        o = F.conv2d(xp[:, None], self.k_cols)  # (c, 2, h, w+1)
        y = torch.stack([o[:, 0, :, :w], o[:, 1, :, 1 : w + 1]], dim=3).reshape(c, h, 2 * w)
        return y[:, :, :n_out]

    def _axis_matrices(self) -> None:
        """Dense per-axis operators of the recursive upsampler: level i's features are
        R_i @ y_i @ C_i^T. The recursion is separable and linear, so pushing identity
        matrices through it gives the exact operators; BLAS matmuls with them are ~20x faster
        than the strided convolutions on this CPU."""
        rows, cols = [], []
        for i, (h, w) in enumerate(self.shapes):
            r = torch.eye(h)[:, :, None]  # (h, h, 1): channel k = unit vector k
            c = torch.eye(w)[:, None, :]
            for j in range(i - 1, -1, -1):
                r = self._up_rows(r, self.shapes[j][0])
                c = self._up_cols(c, self.shapes[j][1])
            rows.append(r[:, :, 0].T.contiguous())  # (H, h)
            cols.append(c[:, 0, :].T.contiguous())  # (W, w)
        self.up_rows_m, self.up_cols_m = rows, cols

    def upsample(self, ys: list[torch.Tensor], rows: torch.Tensor | None = None) -> torch.Tensor:
        """(G, H, W) features in grid order (or (G, len(rows), W) for a subset of rows)."""
        if not hasattr(self, "up_rows_m"):
            self._axis_matrices()
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

    # ---- entropy model ----------------------------------------------------------------------
    def contexts(self, ys: list[torch.Tensor], g: int, idx: torch.Tensor) -> torch.Tensor:
        """(n, N_CTX) ARM inputs of the positions ``idx`` (flat) of grid ``g``: causal
        neighbours in the grid (zero outside), then the parent grid around (y // 2, x // 2)
        (clamped; zero without a parent), as the integer ARM of arm.py reads them."""
        y = ys[g]
        w = y.shape[1]
        yp = F.pad(y, (PAD, PAD, PAD, 0))
        wp = w + 2 * PAD
        row, col = idx // w, idx % w
        base = (row + PAD) * wp + (col + PAD)
        offs = torch.tensor([dy * wp + dx for dy, dx in CTX_OFFSETS.tolist()])
        spatial = yp.reshape(-1)[base[:, None] + offs[None, :]]
        p = self.parents[g]
        if p < 0:
            return torch.cat([spatial, spatial.new_zeros(idx.shape[0], N_PARENT)], dim=1)
        par = ys[p]
        hp, wp_ = par.shape
        pr = ((row >> 1)[:, None] + self.par_dy[None, :]).clamp(0, hp - 1)
        pc = ((col >> 1)[:, None] + self.par_dx[None, :]).clamp(0, wp_ - 1)
        return torch.cat([spatial, par.reshape(-1)[pr * wp_ + pc]], dim=1)

    def arm_forward(self, ctx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.relu(self.arm[0](ctx))
        x = F.relu(self.arm[1](x))
        o = self.arm[2](x)
        return o[:, 0], o[:, 1].clamp(LOGB_MIN, LOGB_MAX)

    def rate_bits(
        self, ys: list[torch.Tensor], frac: float = 1.0, gen: torch.Generator | None = None
    ) -> torch.Tensor:
        """Estimated bits of all latents; on a random ``frac`` of positions, scaled up
        (unbiased)."""
        ctxs, vals, weights = [], [], []
        for g, y in enumerate(ys):
            n = y.numel()
            if frac < 1.0 and n > 4096:
                m = max(1, int(n * frac))
                idx = torch.randint(0, n, (m,), generator=gen)
                weights.append(torch.full((m,), n / m))
            else:
                idx = torch.arange(n)
                weights.append(torch.ones(n))
            ctxs.append(self.contexts(ys, g, idx))
            vals.append(y.reshape(-1)[idx])
        ctx = torch.cat(ctxs)
        v = torch.cat(vals)
        wt = torch.cat(weights)
        mu, logb = self.arm_forward(ctx)
        p = laplace_prob(v, mu, logb)
        return (wt * -torch.log2(p)).sum()


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
