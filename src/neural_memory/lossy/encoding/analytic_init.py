"""Analytic initialisation: start training close to the answer.

The image is rotated onto its principal colour axes (a luma-like axis first, then two
chroma-like axes). Grids are assigned to components in header order: the first grid of a level
carries component 0, the second component 1, ... Each component's grids get a Laplacian pyramid
of that component built with the model's own upsampler, so sum_lv up^lv(band_lv) reproduces
the component exactly (at the resolution of its finest grid). Bands are quantised in units of
s_lv = s0 / r**lv: with r = 2 a unit step of every level has the same energy in the image (a
level-lv latent spreads over ~4**lv pixels); the encoder's r is TrainConfig.level_step_ratio
(1.8: coarser steps for the coarse levels). The synthesis starts linear:
one hidden unit per grid with a bias large enough to keep its ReLU open, the output layer maps
it back along the component's colour axis. Training then only has to learn what this linear
pyramid codec misses, instead of discovering colour from scratch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from neural_memory.lossy.encoding.model import CodecModel


def _down(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """2x2 area downsampling of (C, H, W) to (C, h, w), replicating an odd last row/column."""
    ph, pw = 2 * h - x.shape[1], 2 * w - x.shape[2]
    xp = F.pad(x[None], (0, pw, 0, ph), mode="replicate")[0]
    return F.avg_pool2d(xp[None], 2)[0]


@torch.no_grad()
def pyramid_init(
    model: CodecModel, image: torch.Tensor, step0: float, level_ratio: float = 2.0
) -> None:
    """image: (C, H, W) float in [0, 1]. Sets latents and synthesis weights in place, level lv
    quantised in units of ``step0 / level_ratio**lv``."""
    c = image.shape[0]
    shapes = model.shapes
    levels = model.arch.grid_levels
    flat = image.reshape(c, -1)
    mean = flat.mean(dim=1)
    axes = torch.eye(c, device=image.device)
    if c > 1 and flat.shape[1] > 1:
        cov = torch.cov(flat.double()) + 1e-9 * torch.eye(
            c, dtype=torch.float64, device=image.device
        )
        if torch.isfinite(cov).all():
            _, vecs = torch.linalg.eigh(cov)
            axes = vecs.flip(1).T.float()  # rows: principal axes, largest variance first
            axes = axes * torch.where(axes.sum(1, keepdim=True) < 0, -1.0, 1.0)
    comps = axes @ (flat - mean[:, None])  # (C, N)
    comp_of = []
    for g, lv in enumerate(levels):
        comp_of.append(sum(1 for k in range(g) if levels[k] == lv))
    gauss = [comps.reshape(-1, *image.shape[1:])]
    for h, w in shapes[1:]:
        gauss.append(_down(gauss[-1], h, w))
    hidden = model.syn[0].out_features
    linear_ok = len(model.syn) == 2 and hidden >= len(levels)
    l1, l2 = model.syn[0], model.syn[1]
    if linear_ok:
        l2.weight.zero_()
        l1.weight[: len(levels)].zero_()
    bias_out = mean.clone()
    for g, lv in enumerate(levels):
        k = comp_of[g]
        if k >= c:
            continue
        top = max(lv2 for g2, lv2 in enumerate(levels) if comp_of[g2] == k)
        if lv == top:
            band = gauss[lv][k]
        else:
            h, w = shapes[lv]
            up = model._up_cols(model._up_rows(gauss[lv + 1][k : k + 1], h, lv), w, lv)[0]
            band = gauss[lv][k] - up
        s = step0 / level_ratio**lv
        y = band / s
        model.latents[g].copy_(y)
        if linear_ok:
            b = float(y.abs().max()) * 2.0**-lv + 2.0  # features carry the 2**-lv gain
            l1.weight[g, g] = 1.0
            l1.bias[g] = b
            gain = s * 2**lv  # pixel value of one latent unit (features carry 2**-lv)
            l2.weight[:, g] = axes[k] * gain
            bias_out -= axes[k] * gain * b
    if linear_ok:
        l2.bias.copy_(bias_out)
