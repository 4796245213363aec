"""Per-image rate-distortion training of a CodecModel."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from neural_memory.lossy.model import CodecModel


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 600
    lr: float = 1e-2
    noise_frac: float = 0.7  # first part: additive uniform noise; rest: straight-through round
    rate_frac: float = 0.25  # fraction of latent positions used for the rate estimate
    warmup: int = 10


def quantize_proxy(y: torch.Tensor, noise: bool) -> torch.Tensor:
    if noise:
        return y + (torch.rand_like(y) - 0.5)
    return y + (torch.round(y) - y).detach()


def train(
    model: CodecModel,
    target: torch.Tensor,
    lmbda: float,
    cfg: TrainConfig,
    seed: int = 0,
    progress: Callable[[int, int, dict], None] | None = None,
) -> dict:
    """target: (H*W, C) float in [0, 1]. Loss = MSE + lmbda * bits / (H*W)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    n_pix = target.shape[0]
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    n_noise = int(cfg.steps * cfg.noise_frac)
    t0 = time.time()
    log = {}
    for step in range(cfg.steps):
        lr_scale = (
            min(1.0, (step + 1) / cfg.warmup) * 0.5 * (1 + math.cos(math.pi * step / cfg.steps))
        )
        for g in opt.param_groups:
            g["lr"] = cfg.lr * max(lr_scale, 0.01)
        noise = step < n_noise
        ys = [quantize_proxy(y, noise) for y in model.latents]
        feat = model.upsample(ys)
        pred = model.synth(feat.reshape(feat.shape[0], -1).T)
        mse = ((pred - target) ** 2).mean()
        bits = model.rate_bits(ys, cfg.rate_frac, gen)
        loss = mse + lmbda * bits / n_pix
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if progress is not None or step == cfg.steps - 1 or step % 50 == 0:
            psnr = -10 * math.log10(max(mse.item(), 1e-10))
            log = {"bpp": bits.item() / n_pix, "psnr": psnr, "time": time.time() - t0}
            if progress is not None:
                progress(step + 1, cfg.steps, log)
    return log
