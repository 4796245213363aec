"""The trainable representation (PyTorch): latent pyramid, fixed bicubic upsampler, synthesis
MLP and ARM. The float forward mirrors the integer decoder of fixed_point.py / arm.py up to
rounding of the fixed-point intermediates."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from neural_memory.entropy.laplace import LOGB_MIN, LOGB_STEP, NSCALE
from neural_memory.lossy.arm import CTX_OFFSETS, N_CTX, PAD
from neural_memory.lossy.bitstream import ArchConfig
from neural_memory.lossy.fixed_point import TAPS_EVEN, TAPS_ODD, level_shapes

LOGB_MAX = LOGB_MIN + (NSCALE - 1) * LOGB_STEP


class CodecModel(nn.Module):
    def __init__(self, height: int, width: int, arch: ArchConfig):
        super().__init__()
        self.arch = arch
        self.height, self.width = height, width
        self.shapes = level_shapes(height, width, arch.n_levels)
        self.latents = nn.ParameterList([nn.Parameter(torch.zeros(h, w)) for h, w in self.shapes])
        widths = [arch.n_levels, *arch.syn_hidden, arch.channels]
        self.syn = nn.ModuleList(
            nn.Linear(widths[i], widths[i + 1]) for i in range(len(widths) - 1)
        )
        a = arch.arm_hidden
        self.arm = nn.ModuleList([nn.Linear(N_CTX, a), nn.Linear(a, a), nn.Linear(a, 2)])
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

    def upsample(self, ys: list[torch.Tensor]) -> torch.Tensor:
        """(L, H, W) features, level 0 first (same recursion as fixed_point.upsample_levels)."""
        stack = ys[-1][None]
        for i in range(len(ys) - 2, -1, -1):
            h, w = self.shapes[i]
            stack = self._up_cols(self._up_rows(stack, h), w)
            stack = torch.cat([stack, ys[i][None]], dim=0)
        return stack.flip(0)

    # ---- synthesis --------------------------------------------------------------------------
    def synth(self, x: torch.Tensor) -> torch.Tensor:
        """Per-pixel MLP on (N, L) -> (N, C)."""
        for i, layer in enumerate(self.syn):
            x = layer(x)
            if i < len(self.syn) - 1:
                x = F.relu(x)
        return x

    # ---- entropy model ----------------------------------------------------------------------
    def contexts(self, y: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        """(n, N_CTX) causal neighbours of the positions ``idx`` (flat; None = all)."""
        h, w = y.shape
        yp = F.pad(y, (PAD, PAD, PAD, 0))
        wp = w + 2 * PAD
        flat = yp.reshape(-1)
        if idx is None:
            idx = torch.arange(h * w)
        base = (idx // w + PAD) * wp + (idx % w + PAD)
        offs = torch.tensor([dy * wp + dx for dy, dx in CTX_OFFSETS.tolist()])
        return flat[base[:, None] + offs[None, :]]

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
        for y in ys:
            n = y.numel()
            if frac < 1.0 and n > 4096:
                m = max(1, int(n * frac))
                idx = torch.randint(0, n, (m,), generator=gen)
                ctxs.append(self.contexts(y, idx))
                vals.append(y.reshape(-1)[idx])
                weights.append(torch.full((m,), n / m))
            else:
                ctxs.append(self.contexts(y))
                vals.append(y.reshape(-1))
                weights.append(torch.ones(n))
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
