"""Inpainting by a network fitted to the known pixels of one image.

The representation has two stages, both built from this image alone (no pretrained weights):

1. two smooth fills (fill.py), exact on known pixels: the membrane (harmonic) and the thin
   plate (biharmonic), both by conjugate gradients from a pull-push pyramid start;
2. a small convolutional network that maps (masked image, mask, both fills) to a correction
   of one of them (thin plate for small holes, membrane for large ones). It is trained
   *self-supervised* on this image: random crops, where
   known pixels are additionally hidden by synthetic masks of the same kind as the real one,
   and the loss is the error on exactly those hidden-but-known pixels. The network thus learns
   this image's edges, textures and colour correlations as seen through holes like the real
   ones, and is then applied once to the real mask.

Known pixels are returned exactly as given; only masked pixels are synthesised.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from neural_memory.errors import ImageError, OptionError
from neural_memory.memory_budget import INPAINT, memory_shortfall
from neural_memory.reconstruct.masks import MASK_KINDS, as_mask, box_mask, stroke_mask
from neural_memory.torch_threads import torch_threads

KINDS = ("auto", *MASK_KINDS)
MIN_SIDE = 40  # images are padded to at least this size for the network


@dataclass(frozen=True)
class InpaintConfig:
    """Options of :func:`inpaint`. The defaults fit a 768x512 image in well under a minute
    on two CPU cores; ``steps`` trades time for quality almost linearly at the start."""

    kind: str = "auto"  # synthetic training masks: random | strokes | boxes | auto (guess)
    steps: int = 200  # optimiser steps of the refinement network (0 = coarse fill only)
    batch: int = 8  # crops per step
    crop: int = 64  # crop side (grown to fit boxes)
    width: int = 24  # feature channels
    lr: float = 3e-3
    fill_iters: int = 30  # membrane CG steps of the coarse fill
    hide: float = 0.2  # fraction of known pixels a synthetic random mask hides
    seed: int = 0
    threads: int | None = None  # torch threads (None = leave as is)
    verbose: bool = False

    def check(self) -> None:
        if self.kind not in KINDS:
            raise OptionError(f"unknown mask kind {self.kind!r}; choose one of {', '.join(KINDS)}")
        for name in ("steps", "fill_iters"):
            if getattr(self, name) < 0:
                raise OptionError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("batch", "crop", "width"):
            if getattr(self, name) < 1:
                raise OptionError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.hide < 1:
            raise OptionError(f"hide must be in (0, 1), got {self.hide}")
        if not self.lr > 0:
            raise OptionError(f"lr must be positive, got {self.lr}")


def guess_kind(mask: np.ndarray) -> str:
    """Which synthetic masks resemble ``mask``: scattered pixels, thin strokes or blobs.

    Decided by how deep the holes are (distance of the deepest missing pixel to a known one)
    and how many missing pixels are isolated."""
    from scipy.ndimage import distance_transform_edt

    depth = distance_transform_edt(mask)
    if depth.max() >= 8:
        return "boxes"
    if mask.mean() > 0.2 or depth.max() < 1.5:
        return "random"
    return "strokes"


def hole_size(mask: np.ndarray) -> int:
    """Side of the synthetic boxes: twice the deepest hole depth, in [8, 64]."""
    from scipy.ndimage import distance_transform_edt

    depth = float(distance_transform_edt(mask).max())
    return int(np.clip(2 * round(depth), 8, 64))


def inpaint(image: np.ndarray, mask: np.ndarray, **options) -> np.ndarray:
    """Fill the pixels of ``image`` where ``mask`` is nonzero; return a new array.

    ``image`` is ``(H, W)`` or ``(H, W, C)`` uint8/uint16 (alpha, if any, is filled like a
    colour channel); ``mask`` is ``(H, W)`` or an image of the same size (nonzero = unknown).
    ``options`` are the fields of :class:`InpaintConfig`.
    """
    try:
        config = InpaintConfig(**options)
    except TypeError as exc:
        raise OptionError(f"unknown inpaint option: {exc}") from None
    config.check()
    pixels = np.asarray(image)
    squeeze = pixels.ndim == 2
    if squeeze:
        pixels = pixels[:, :, None]
    if pixels.ndim != 3 or pixels.dtype not in (np.uint8, np.uint16):
        raise ImageError(
            f"expected an (H, W[, C]) uint8/uint16 image, got {pixels.shape} {pixels.dtype}"
        )
    height, width, _ = pixels.shape
    missing = as_mask(mask, height, width)
    if not missing.any():
        return pixels[:, :, 0].copy() if squeeze else pixels.copy()
    advice = ", or crop it around the masked region and fill the crop"
    shortfall = memory_shortfall(INPAINT, height, width, "inpainting", advice)
    if shortfall is not None:
        raise ImageError(shortfall)
    if config.kind == "auto":
        config = replace(config, kind=guess_kind(missing))
    peak = 65535.0 if pixels.dtype == np.uint16 else 255.0
    # the network's widest dilation reflects 16 pixels: tiny images are edge-padded (the
    # padding counts as known copies of the border) and cropped back
    pad_y, pad_x = max(0, MIN_SIDE - height), max(0, MIN_SIDE - width)
    values = np.pad(pixels.astype(np.float32) / peak, ((0, pad_y), (0, pad_x), (0, 0)), "edge")
    missing_pad = np.pad(missing, ((0, pad_y), (0, pad_x)), constant_values=False)
    filled = _inpaint_float(values, missing_pad, config)[:height, :width]
    out = np.clip(np.round(filled * peak), 0, peak).astype(pixels.dtype)
    out[~missing] = pixels[~missing]
    return out[:, :, 0] if squeeze else out


def _inpaint_float(values: np.ndarray, missing: np.ndarray, config: InpaintConfig) -> np.ndarray:
    import torch

    from neural_memory.reconstruct.fill import coarse_fills
    from neural_memory.reconstruct.net import RefineNet

    with torch_threads(config.threads or None):
        torch.manual_seed(config.seed)
        img = torch.from_numpy(np.ascontiguousarray(values.transpose(2, 0, 1)))[None]
        known = torch.from_numpy(~missing).float()[None, None]
        with torch.no_grad():
            coarse, other = _ordered(coarse_fills(img, known, config.fill_iters), config.kind)
        if config.steps == 0:
            return coarse[0].permute(1, 2, 0).numpy()
        net = RefineNet(img.shape[1], config.width)
        _train(net, img, known, missing, config)
        with torch.no_grad():
            out = net(img, known, coarse, other)
        return out[0].clamp(0, 1).permute(1, 2, 0).numpy()


def _ordered(fills, kind: str):
    """(base, other): the network corrects the thin plate for scattered pixels and strokes
    (it is the best smooth fill of small holes) and the membrane for large holes (where the
    thin plate overshoots)."""
    membrane, thin_plate = fills
    return (membrane, thin_plate) if kind == "boxes" else (thin_plate, membrane)


def _synthetic(rng: np.random.Generator, kind: str, size: int, cfg: InpaintConfig, box: int):
    if kind == "random":
        return rng.random((size, size)) < cfg.hide
    if kind == "strokes":
        count = max(1, round(size * size / 20000))
        return stroke_mask(rng, size, size, count=count, seg_len=(size / 8, size / 3))
    return box_mask(rng, size, size, count=1, size=box)


def _train(net, img, known, missing: np.ndarray, cfg: InpaintConfig) -> None:
    """Self-supervised fitting on crops with extra synthetic holes (module docstring)."""
    import torch

    from neural_memory.reconstruct.fill import coarse_fills

    rng = np.random.default_rng(cfg.seed)
    _, _, height, width = img.shape
    box = hole_size(missing) if cfg.kind == "boxes" else 0
    size = min(max(cfg.crop, box + 64), height, width)
    # larger crops for large holes, fewer of them: the pixels per step stay about constant
    batch = max(1, round(cfg.batch * cfg.crop**2 / size**2))
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.1
    )
    start = time.perf_counter()
    for step in range(cfg.steps):
        crops, knowns, hides = [], [], []
        for _ in range(batch):
            y = int(rng.integers(0, height - size + 1))
            x = int(rng.integers(0, width - size + 1))
            c = img[0, :, y : y + size, x : x + size]
            k = known[0, :, y : y + size, x : x + size]
            h = torch.from_numpy(_synthetic(rng, cfg.kind, size, cfg, box)).float()[None]
            t = int(rng.integers(0, 8))  # one of the 8 flips / rotations
            c, k, h = (_orient(v, t) for v in (c, k, h))
            crops.append(c)
            knowns.append(k)
            hides.append(h * k)  # only known pixels can be scored
        c = torch.stack(crops)
        target = torch.stack(hides)
        k_in = torch.stack(knowns) * (1 - target)
        with torch.no_grad():
            coarse, other = _ordered(coarse_fills(c, k_in, cfg.fill_iters), cfg.kind)
        out = net(c, k_in, coarse, other)
        loss = (((out - c) ** 2) * target).sum() / (target.sum() * c.shape[1]).clamp(min=1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if cfg.verbose and (step % 50 == 0 or step == cfg.steps - 1):
            psnr = -10 * np.log10(max(loss.item(), 1e-12))
            print(f"step {step:4d} loss-psnr {psnr:6.2f} dB  {time.perf_counter() - start:6.1f} s")


def _orient(v, t: int):
    import torch

    v = torch.rot90(v, t % 4, dims=(-2, -1))
    return v.flip(-1) if t >= 4 else v
