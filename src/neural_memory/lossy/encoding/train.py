"""Per-image rate-distortion training of a CodecModel."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from neural_memory.lossy.encoding.model import CodecModel
from neural_memory.lossy.encoding.optim import Adam, Soap


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 600
    # latents (Kodak crops, 600 steps: lr 0.025 / 0.05 / 0.1 -> +11.0 / +6.4 / +2.6 % vs WebP)
    lr: float = 0.1
    net_lr: float = 1e-2  # ARM
    # synthesis: it starts from the analytic linear solution, so 2e-3 (tuned with Adam) kept
    # it close; with SOAP a larger step pays. Quick set, BD-rate vs AVIF s1 at 850 steps:
    # 2e-3 / 4e-3 / 8e-3 / 1.6e-2 -> +31.5 / +29.9 / +29.5 / +31.7 %; at 1500 steps 2e-3
    # +26.7 %, 8e-3 +25.1 %
    syn_lr: float = 8e-3
    # first part: soft-rounding + uniform noise; rest: straight-through rounding. The STE phase
    # is off: with Adam it lets latents drift across rounding boundaries (kodim01 crop, 1200
    # steps: the rounded loss fell for 840 noise steps, then rose through the whole STE phase;
    # 2.17 bpp / 33.5 dB at the end vs 1.95 / 34.9 without it)
    noise_frac: float = 1.0
    # the rate is estimated on one random phase of a rate_stride x rate_stride lattice of each
    # grid; the presets choose it by rate (presets.rate_stride: every latent, stride 1, from
    # lambda 2e-3, where it pays for its ~1.4x step time; on Kodak crops with the recipe of
    # 2026-12-01 it had measured no better)
    rate_stride: int = 2
    warmup: int = 10
    # soft-rounding temperature at the start of the noise phase (0 = off) and at its end,
    # linear (soft_linear) or geometric in between. Cool-chic 5's 0.35 -> 0.08 linear, with
    # its Gaussian noise below, replaced 0.3 -> 0.1 geometric with uniform noise (see
    # noise_kind); under uniform noise 0.5 -> 0.2 had been 2 points worse than 0.3 -> 0.1
    soft_t0: float = 0.35
    soft_t1: float = 0.08
    soft_linear: bool = True
    mixed: bool = False  # noise phase: rounded (STE) latents for distortion, noisy for rate
    row_frac: float = 0.5  # fraction of image rows used for the distortion in early steps
    row_frac_until: float = 0.6  # ... for this fraction of the steps (then full image)
    init_step: float = 8.0  # pyramid init step = init_step * sqrt(lmbda); 0 = no analytic init
    # the analytic start quantises level lv in units of init_step * sqrt(lmbda) / ratio**lv
    # (analytic_init.pyramid_init), and the latents keep that unit step: 2 gives every
    # level's unit step the same energy in the image, a smaller ratio coarser steps to the
    # coarse levels. The presets choose it by rate (presets.level_step_ratio)
    level_step_ratio: float = 2.0
    arm_prior: bool = True  # start the ARM from the shipped prior (arm_prior.py)
    arm_finetune_steps: int = 40  # ARM-only steps on the rounded latents (finetune_arm)
    # optimiser of the network weights (ARM and synthesis): "soap" (optim.Soap) or "adam".
    # Time-to-quality quick set, 850 steps, BD-rate vs AVIF s1: Adam +39.9 %, SOAP +38.6 %;
    # with the Gaussian noise: Adam +33.3 %, SOAP +31.5 % (kept)
    net_optimizer: str = "soap"
    # noise added between the two soft-roundings: "gaussian" with a standard deviation going
    # linearly from noise_sigma0 to noise_sigma1 (Cool-chic 5's 0.22 -> 0.15), or "uniform" on
    # [-0.5, 0.5] (C3; sigma 0.29). Quick set, 850 steps: uniform +39.9 %, Gaussian 0.22 ->
    # 0.15 +33.3 % (every image gains, 1-10 points), 0.26 -> 0.18 +33.1 %, 0.18 -> 0.10 (and
    # temperature to 0.05) worse on all four images measured: the optimum is broad near 0.2
    noise_kind: str = "gaussian"
    noise_sigma0: float = 0.22
    noise_sigma1: float = 0.15
    # steps after the main ones in which the latents stay at their rounded values (what the
    # decoder will see) and only the networks train, at final_lr times their base rates:
    # the synthesis and the ARM adapt to the integers instead of the proxy's noise.
    # Quick set, 850 + 100 steps: +30.0 % vs AVIF s1 (850 alone +31.5 %, every image better,
    # CLIC crops by 2-5 points)
    final_steps: int = 0
    final_lr: float = 0.1


def soft_round(y: torch.Tensor, t: float) -> torch.Tensor:
    """Differentiable rounding (Agustsson & Theis 2020): -> round(y) as t -> 0, identity at
    large t."""
    m = torch.floor(y) + 0.5
    r = y - m
    return m + torch.tanh(r / t) / (2 * math.tanh(0.5 / t))


def proxy_and_derivative(
    y: torch.Tensor, noise: torch.Tensor | None, t: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`quantize_proxy` with explicit noise, and its derivative, without autograd
    (the fused CPU step chains gradients by hand): ``soft_round(soft_round(y, t) + noise, t)``
    with noise and t > 0, ``y + noise`` with t = 0, round(y) with a unit (straight-through)
    derivative without noise. In place where possible: this runs on every latent each step.

    >>> p, d = proxy_and_derivative(torch.tensor([0.2, 1.7]), None, 0.0)
    >>> p.tolist(), d.tolist()
    ([0.0, 2.0], [1.0, 1.0])
    """
    if noise is None:
        return torch.round(y), torch.ones_like(y)
    if t <= 0:
        return y + noise, torch.ones_like(y)
    if y.device.type == "cpu" and y.dtype == torch.float32 and noise.dtype == torch.float32:
        from neural_memory.lossy.encoding import train_kernels as tk

        fused = tk.proxy_c(y.contiguous().numpy(), noise.contiguous().numpy(), t)
        if fused is not None:
            return torch.from_numpy(fused[0]), torch.from_numpy(fused[1])
    k = 1.0 / (2 * math.tanh(0.5 / t))
    m = torch.floor(y).add_(0.5)
    th = torch.tanh((y - m).mul_(1 / t))
    deriv = th.square().neg_().add_(1.0).mul_(k / t)
    z = th.mul_(k).add_(m).add_(noise)
    m2 = torch.floor(z).add_(0.5)
    th2 = torch.tanh(z.sub_(m2).mul_(1 / t))
    deriv.mul_(th2.square().neg_().add_(1.0).mul_(k / t))
    return th2.mul_(k).add_(m2), deriv


def quantize_proxy(y: torch.Tensor, noise: torch.Tensor | None, t: float = 0.0) -> torch.Tensor:
    """The training proxy of round(y): ``soft_round(soft_round(y, t) + noise, t)``, or
    ``y + noise`` with t = 0, or straight-through rounding without noise."""
    if noise is not None:
        if t > 0:
            return soft_round(soft_round(y, t) + noise, t)
        return y + noise
    return y + (torch.round(y) - y).detach()


def noise_sigma(cfg: TrainConfig, frac: float) -> float:
    """The Gaussian proxy noise's standard deviation at ``frac`` (0..1) of the noise phase."""
    return cfg.noise_sigma0 + (cfg.noise_sigma1 - cfg.noise_sigma0) * frac


def noise_keys(gen: torch.Generator, n: int) -> list[int]:
    """One 64-bit noise key per latent grid for this step, from the training's generator.

    Why keys and not torch's global stream: the noise of a grid is then a function of its
    key and the sample's index (train_kernels.gauss_c, made in C), and the fused and
    autograd steps draw the same samples."""
    base = int(torch.randint(0, 2**62, (1,), generator=gen))
    return [(base + g * 0x9E3779B97F4A7C15) % 2**64 for g in range(n)]


def draw_noise(like: torch.Tensor, cfg: TrainConfig, frac: float, key: int) -> torch.Tensor:
    """The proxy's noise at ``frac`` (0..1) of the noise phase (see TrainConfig), from
    ``key`` (:func:`noise_keys`)."""
    if cfg.noise_kind == "gaussian":
        from neural_memory.lossy.encoding import train_kernels as tk

        fast = tk.gauss_c(tuple(like.shape), noise_sigma(cfg, frac), key)
        if fast is not None:
            return torch.from_numpy(fast).to(like.device)
        gen = torch.Generator().manual_seed(key % 2**63)
        return torch.randn(like.shape, generator=gen).mul_(noise_sigma(cfg, frac)).to(like.device)
    gen = torch.Generator().manual_seed(key % 2**63)
    return torch.rand(like.shape, generator=gen).sub_(0.5).to(like.device)


@dataclass(frozen=True)
class RateTarget:
    """Steer lambda during training towards a target bpp or PSNR (one of them).

    Why in the loop: a separate search would train several times; instead lambda is corrected
    multiplicatively every ``every`` steps from a cheap estimate on rounded latents (rate from
    the ARM on a subset of positions plus a guess of the weight bits, PSNR from one forward).
    """

    bpp: float | None = None
    psnr: float | None = None
    overhead_bits: float = 9000.0  # networks + header, measured ~8-9 kbit
    every: int = 20
    start: float = 0.2
    stop: float = 0.85


@torch.no_grad()
def _estimate(model: CodecModel, target: torch.Tensor, gen: torch.Generator) -> tuple[float, float]:
    ys = [torch.round(y) for y in model.latents]
    if model.fused_cpu:
        bits = model.rate_bits_fused(ys, 2, gen)[0]
    else:
        bits = float(model.rate_bits(ys, 2, gen))
    target_hw = target.reshape(target.shape[0], model.height, model.width)
    mse = model.squared_error(ys, target_hw) / target.numel()
    return bits, -10 * math.log10(max(mse, 1e-10))


def _adjust(lmbda: float, rt: RateTarget, bits: float, psnr: float, n_pix: int) -> float:
    if rt.bpp is not None:
        ratio = (bits + rt.overhead_bits) / n_pix / rt.bpp
        factor = ratio**1.5
    else:
        factor = 10 ** ((psnr - rt.psnr) / 5.0)
    return lmbda * min(2.0, max(0.5, factor))


def _autograd_step(model, cfg, target_hw, rows, n_values, lmbda, noise, t_soft, gen):
    """Gradients of one training step through PyTorch autograd (any device); returns
    (MSE, estimated bits). The distortion runs block by block into leaf copies of the
    proxies (bounded memory, see CodecModel.squared_error), then one backward of the rate
    plus the proxies' gradient."""
    n_pix = model.height * model.width
    keys = noise_keys(gen, len(model.latents))
    ys = [
        quantize_proxy(y, None if noise is None else draw_noise(y, cfg, noise, k), t_soft)
        for y, k in zip(model.latents, keys, strict=True)
    ]
    ys_rate = ys
    if noise is not None and cfg.mixed:
        ys = [quantize_proxy(y, None) for y in model.latents]
    leaves = [y.detach().requires_grad_() for y in ys]
    mse = model.squared_error(leaves, target_hw, rows, backward_scale=1.0 / n_values)
    bits = model.rate_bits(ys_rate, cfg.rate_stride, gen)
    carried = sum(
        (y * leaf.grad).sum() for y, leaf in zip(ys, leaves, strict=True) if leaf.grad is not None
    )
    (lmbda * bits / n_pix + carried).backward()
    return mse / n_values, float(bits.detach()), None


def _fused_step(model, cfg, target_hw, rows, n_values, lmbda, noise, t_soft, gen):
    """As :func:`_autograd_step` with the numba kernels of train_kernels.py (CPU): the
    proxies, the distortion and the rate each return their gradients as arrays; the
    latents' gradients come back in parts, (rate gradient, its proxy's derivative,
    distortion gradient, its proxy's derivative) per grid, which optim.Adam.step chains and
    applies in one C pass (the autograd step returns None: its gradients are in ``.grad``).
    No autograd graph is built."""
    n_pix = model.height * model.width
    rate_in, rate_d, dist_in, dist_d = [], [], [], []
    for y, key in zip(model.latents, noise_keys(gen, len(model.latents)), strict=True):
        lat = y.detach()
        p, d = proxy_and_derivative(
            lat, None if noise is None else draw_noise(lat, cfg, noise, key), t_soft
        )
        rate_in.append(p)
        rate_d.append(d)
        if noise is not None and cfg.mixed:
            p, d = proxy_and_derivative(lat, None, 0.0)
        dist_in.append(p.requires_grad_())
        dist_d.append(d)
    mse = model.squared_error(dist_in, target_hw, rows, backward_scale=1.0 / n_values)
    bits, g_rate = model.rate_bits_fused(rate_in, cfg.rate_stride, gen, lmbda / n_pix)
    parts = [
        (gr, dr, None if leaf.grad is None else leaf.grad, None if leaf.grad is None else dd)
        for leaf, dd, gr, dr in zip(dist_in, dist_d, g_rate, rate_d, strict=True)
    ]
    return mse / n_values, bits, parts


def synthesis_params(model: CodecModel) -> list[torch.nn.Parameter]:
    """What trains with the synthesis (its optimiser group): its layers, and the
    pre-concatenation filters where the model has them (they shape the same features)."""
    extra = [] if model.prefilter is None else [model.prefilter]
    return [*model.syn.parameters(), *extra]


def train(
    model: CodecModel,
    target: torch.Tensor,
    lmbda: float,
    cfg: TrainConfig,
    seed: int = 0,
    progress: Callable[[int, int, dict], None] | None = None,
    rate_target: RateTarget | None = None,
) -> dict:
    """target: (C, H*W) float in [0, 1]. Loss = MSE + lmbda * bits / (H*W)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    n_pix = target.shape[1]
    latent_opt = Adam([{"params": list(model.latents), "lr": cfg.lr, "base": cfg.lr}])
    net_groups = [
        {"params": list(model.arm.parameters()), "lr": cfg.net_lr, "base": cfg.net_lr},
        {"params": synthesis_params(model), "lr": cfg.syn_lr, "base": cfg.syn_lr},
    ]
    net_opt = Soap(net_groups) if cfg.net_optimizer == "soap" else Adam(net_groups)
    optimisers = (latent_opt, net_opt)
    n_noise = int(cfg.steps * cfg.noise_frac)
    h = model.height
    target_hw = target.reshape(target.shape[0], h, -1)
    n_rows = max(1, int(h * cfg.row_frac))
    n_rows_phase = int(cfg.steps * cfg.row_frac_until)
    t0 = time.time()
    log = {}
    total = cfg.steps + cfg.final_steps
    for step in range(total):
        final = step >= cfg.steps
        lr_scale = (
            min(1.0, (step + 1) / cfg.warmup) * 0.5 * (1 + math.cos(math.pi * step / cfg.steps))
        )
        if final:
            lr_scale = cfg.final_lr
            if step == cfg.steps:  # latents to the integers the decoder gets, then fixed
                with torch.no_grad():
                    for y in model.latents:
                        y.round_()
        for opt in optimisers:
            for g in opt.param_groups:
                g["lr"] = g["base"] * max(lr_scale, 0.01)
        rt = rate_target
        if (
            rt is not None
            and rt.start * cfg.steps <= step < rt.stop * cfg.steps
            and step % rt.every == 0
        ):
            est_bits, est_psnr = _estimate(model, target, gen)
            lmbda = _adjust(lmbda, rt, est_bits, est_psnr, n_pix)
        # noise: None (rounding) or the fraction of the noise phase done
        noise = step / max(1, n_noise) if step < n_noise else None
        t_soft = 0.0
        if cfg.soft_t0 > 0 and noise is not None:
            if cfg.soft_linear:
                t_soft = cfg.soft_t0 + (cfg.soft_t1 - cfg.soft_t0) * noise
            else:
                t_soft = cfg.soft_t0 * (cfg.soft_t1 / cfg.soft_t0) ** noise
        rows = None
        if step < n_rows_phase:
            rows = torch.randperm(h, generator=gen)[:n_rows].sort().values.to(target.device)
        n_values = target.shape[0] * (h if rows is None else rows.shape[0]) * model.width
        for opt in optimisers:
            opt.zero_grad(set_to_none=True)
        step_fn = _fused_step if model.fused_cpu else _autograd_step
        mse, bits, latent_grads = step_fn(
            model, cfg, target_hw, rows, n_values, lmbda, noise, t_soft, gen
        )
        if not final:
            latent_opt.step(None if latent_grads is None else [latent_grads])
        net_opt.step()
        if progress is not None or step == total - 1 or step % 50 == 0:
            psnr = -10 * math.log10(max(mse, 1e-10))
            log = {
                "bpp": bits / n_pix,
                "psnr": psnr,
                "time": time.time() - t0,
                "lmbda": lmbda,
            }
            if progress is not None:
                progress(step + 1, total, log)
    return log


def finetune_arm(
    model: CodecModel, ys: list[torch.Tensor], steps: int = 40, lr: float = 1e-3, seed: int = 0
) -> float:
    """A few Adam steps of the ARM alone on the final, rounded latents ``ys``; returns the
    relative drop of their estimated bits (0 if the trained ARM was kept).

    Why: training fits the ARM to noisy latents (y + uniform noise, with noisy contexts), a
    smoother distribution than the integers the coder will see, where small values pile up
    on 0. The latents are fixed now, so only the entropy model moves and each step is the
    rate kernel alone; the estimate on all positions decides whether the new ARM is kept."""
    gen = torch.Generator().manual_seed(seed)
    params = list(model.arm.parameters())
    n = sum(y.numel() for y in ys)

    def bits() -> float:
        if model.fused_cpu:
            return model.rate_bits_fused(ys, 1)[0]
        with torch.no_grad():
            return float(model.rate_bits(ys, 1))

    start = [p.detach().clone() for p in params]
    before = bits()
    opt = Adam([{"params": params, "lr": lr}])
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        if model.fused_cpu:
            model.rate_bits_fused(ys, 2, gen, 1.0 / n)
        else:
            (model.rate_bits(ys, 2, gen) / n).backward()
        opt.step()
    after = bits()
    if after < before:
        return (before - after) / before
    with torch.no_grad():
        for p, p0 in zip(params, start, strict=True):
            p.copy_(p0)
    return 0.0
