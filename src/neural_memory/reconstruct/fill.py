"""Coarse fills of the unknown pixels: cheap, smooth, batched (PyTorch).

They are the first stage of the inpainter and an input of its refinement network. The
network trains on thousands of synthetic masks, so the fill must cost milliseconds on a batch
of crops: pull-push (a weighted image pyramid, O(N)) followed by a few conjugate-gradient
steps of the membrane (Laplace) equation, which removes pull-push's blockiness near the hole
boundary while the pyramid has already supplied the low frequencies a plain solver would need
hundreds of iterations for.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pull_push(values: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Fill ``values`` (B, C, H, W) where ``known`` (B, 1, H, W) is 0 from a weighted pyramid.

    Pull: average-pool the known-weighted values and the weights down to 1 pixel. Push: from
    coarse to fine, each level keeps its own average where its weight is full and blends in
    the upsampled coarser fill where it is not.
    """
    levels = [(values * known, known)]
    while min(levels[-1][1].shape[-2:]) > 1:
        acc, wt = levels[-1]
        # 3x3 tent-ish smoothing before decimation keeps the fill free of 2x2 blocks
        acc = F.avg_pool2d(acc, 3, 2, 1, count_include_pad=False)
        wt = F.avg_pool2d(wt, 3, 2, 1, count_include_pad=False)
        levels.append((acc, wt))
    acc, wt = levels[-1]
    out = acc / wt.clamp(min=1e-8)
    for acc, wt in reversed(levels[:-1]):
        up = F.interpolate(out, size=acc.shape[-2:], mode="bilinear", align_corners=False)
        alpha = (wt * 4.0).clamp(max=1.0) if wt is not known else wt
        own = acc / wt.clamp(min=1e-8)
        out = alpha * own + (1 - alpha) * up
    return out


def _neighbour_sum(x: torch.Tensor) -> torch.Tensor:
    p = F.pad(x, (1, 1, 1, 1))
    return p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:]


def _laplacian(x: torch.Tensor, degree: torch.Tensor) -> torch.Tensor:
    """Graph Laplacian of the pixel grid with reflecting borders (symmetric, PSD)."""
    return degree * x - _neighbour_sum(x)


def _cg(apply, b: torch.Tensor, x: torch.Tensor, iters: int) -> torch.Tensor:
    """Conjugate gradients on each (image, channel) plane at once."""
    r = b - apply(x)
    p = r.clone()
    rr = (r * r).sum(dim=(-2, -1), keepdim=True)
    for _ in range(iters):
        ap = apply(p)
        alpha = rr / (p * ap).sum(dim=(-2, -1), keepdim=True).clamp(min=1e-20)
        x = x + alpha * p
        r = r - alpha * ap
        rr_new = (r * r).sum(dim=(-2, -1), keepdim=True)
        p = r + (rr_new / rr.clamp(min=1e-20)) * p
        rr = rr_new
    return x


def membrane(
    values: torch.Tensor, known: torch.Tensor, init: torch.Tensor, iters: int = 30, order: int = 1
) -> torch.Tensor:
    """Refine ``init`` towards the harmonic (``order=1``: Laplace equation) or biharmonic
    (``order=2``: least squared Laplacian, a thin plate) fill of the unknown pixels, known
    pixels as boundary values, with ``iters`` conjugate-gradient steps.

    The thin plate continues gradients and wins on small holes in smooth images (it is what
    scikit-image's biharmonic inpainting solves); on large holes it extrapolates boundary
    noise, so boxes use the membrane."""
    unknown = 1.0 - known
    degree = _neighbour_sum(torch.ones_like(known))  # 4 inside, 3 on edges, 2 in corners
    fixed = values * known
    if order == 1:

        def apply(x: torch.Tensor) -> torch.Tensor:
            return unknown * _laplacian(unknown * x, degree)

    else:

        def apply(x: torch.Tensor) -> torch.Tensor:
            return unknown * _laplacian(_laplacian(unknown * x, degree), degree)

    if order == 1:
        b = unknown * _neighbour_sum(fixed)
    else:
        b = -unknown * _laplacian(_laplacian(fixed, degree), degree)
    x = _cg(apply, b, init * unknown, iters)
    return fixed + unknown * x


def coarse_fill(
    values: torch.Tensor, known: torch.Tensor, iters: int = 30, order: int = 1
) -> torch.Tensor:
    """Pull-push, then ``iters`` CG steps of the membrane or thin plate (module docstring)."""
    return membrane(values, known, pull_push(values, known), iters, order)


def coarse_fills(
    values: torch.Tensor, known: torch.Tensor, iters: int = 30
) -> tuple[torch.Tensor, torch.Tensor]:
    """Both smooth fills, the membrane and the thin plate (twice the CG steps: it converges
    more slowly), from one pull-push start. The refinement network sees both and learns
    where this image prefers which."""
    start = pull_push(values, known)
    return membrane(values, known, start, iters, 1), membrane(values, known, start, 2 * iters, 2)
