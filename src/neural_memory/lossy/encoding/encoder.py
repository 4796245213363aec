"""Lossy encoder: trains the representation of one image and writes the payload (PyTorch)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

import numpy as np

from neural_memory.errors import ImageError, MissingDependencyError
from neural_memory.memory_budget import LOSSY_ENCODE, memory_shortfall
from neural_memory.options import EncodeOptions

# Torch's OpenMP workers spin after every op by default. A training step is many small torch
# ops around C kernels that run on their own thread pool, so on 2 threads the spinning
# workers took the cores from the kernels: `encode kodim23 --steps 30 --threads 2` used
# 21.9 s of CPU, 9.7 s with passive waiting, same bytes (2026-12-05). Read by OpenMP when
# torch loads, so it is set here, before the import, and only if the user has not chosen.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    import torch
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError(
        "lossy encoding needs PyTorch: pip install torch (CPU wheels: "
        "pip install torch --index-url https://download.pytorch.org/whl/cpu)"
    ) from exc

from neural_memory.entropy.rans import rans_encode
from neural_memory.lossy.decoding.arm import LATENT_MAX
from neural_memory.lossy.decoding.bitstream import (
    ArchConfig,
    QuantModule,
    push_module,
    write_header,
)
from neural_memory.lossy.encoding.analytic_init import pyramid_init
from neural_memory.lossy.encoding.arm_prior import load_arm_prior, set_arm
from neural_memory.lossy.encoding.heap import retained_heap
from neural_memory.lossy.encoding.model import CodecModel
from neural_memory.lossy.encoding.presets import cost_decides_width, initial_lmbda, preset
from neural_memory.lossy.encoding.quantize import (
    latent_stream,
    quantise_networks,
    quantise_prefilter,
)
from neural_memory.lossy.encoding.train import RateTarget, TrainConfig, finetune_arm, train
from neural_memory.torch_threads import torch_threads


def build_payload(
    arch: ArchConfig,
    arm: list[QuantModule],
    syn: list[QuantModule],
    levels: list[np.ndarray],
    prefilter: QuantModule | None = None,
) -> bytes:
    """Header and stream (bitstream.py's layout); ``prefilter`` is version 4's filters."""
    if arch.prefilter != (prefilter is not None):
        raise ValueError("the filters are stored exactly when the architecture has them")
    modules = arm + syn + ([] if prefilter is None else [prefilter])
    n_w = sum(m.w.size + m.b.size for m in modules)
    ws = np.empty(n_w * 45 + 64, np.int64)
    wf = np.empty_like(ws)
    k = 0
    for m in modules:
        k = push_module(m, ws, wf, k)
    ls, lf = latent_stream(levels, arm, arch.grid_levels)
    stream = rans_encode(np.concatenate([ws[:k], ls]), np.concatenate([wf[:k], lf]))
    return write_header(arch, modules) + stream.tobytes()


#: The progress bar's bpp is the file's, not the latents' alone: training measures the latents'
#: bits; the networks add about this many bits per weight once quantised and coded (with the
#: step search of 2026-12-06: ~2.9 on a 64x64 test encode, latent estimate included, 5.3 on
#: whole kodim23 at lambda 0.01, where they weigh far less in the file), the container about
#: 24 bytes.
WEIGHT_BITS_ESTIMATE = 3.0
CONTAINER_BITS = 24 * 8


def _file_rate_progress(progress, model: CodecModel, n_pixels: int):
    """``progress`` with ``bpp`` turned into an estimate of the written file's bpp."""
    if progress is None:
        return None
    latents = {id(p) for p in model.latents}
    weights = sum(p.numel() for p in model.parameters() if id(p) not in latents)
    extra = (weights * WEIGHT_BITS_ESTIMATE + CONTAINER_BITS) / n_pixels

    def update(done: int, total: int, info: dict) -> None:
        if "bpp" in info:
            info = {**info, "bpp": info["bpp"] + extra}
        progress(done, total, info)

    return update


def _target(image: np.ndarray) -> torch.Tensor:
    """The (C, H*W) float32 training target in [0, 1] of an (H, W, C) uint8 image."""
    c = image.shape[2]
    return torch.from_numpy(image.reshape(-1, c).T.astype(np.float32) / 255.0).contiguous()


@torch.no_grad()
def start_bits(image: np.ndarray, arch: ArchConfig, tcfg: TrainConfig, lmbda: float) -> float:
    """Estimated bits of the latents of ``image`` at the analytic start (the rounded pyramid
    of :func:`pyramid_init` under the shipped ARM prior, every latent): what the image will
    cost before any training, for choices that depend on it (presets.widths).

    Why it can decide: on the development images at lambda 0.01 it ranked the final files
    in the same order (CLIC b51d 6.3 kbit -> 1,556 B, 097c 14.6 kbit -> 2,502 B, kodim23
    29.3 kbit -> 4,087 B). It costs one analytic start and one rate pass (a small part of an
    encode: the rate pass is one training step's estimate, without gradients) and leaves
    torch's random stream as it found it. The start is the reference one (every level's unit
    step of equal energy, ``level_step_ratio`` 2), on which presets.NARROW_SYN_BELOW_START_BITS
    was measured, whatever ratio the training then starts from."""
    reference = dataclasses.replace(tcfg, level_step_ratio=2.0)
    with torch.random.fork_rng(devices=[]):  # the model's initialisation draws
        model, _ = _start_model(image, arch, reference, lmbda)
    ys = [torch.round(y) for y in model.latents]
    if model.fused_cpu:
        return model.rate_bits_fused(ys, 1)[0]
    return float(model.rate_bits(ys, 1))


def _start_model(
    image: np.ndarray,
    arch: ArchConfig,
    tcfg: TrainConfig,
    lmbda: float,
    arm_start: np.ndarray | None = None,
    device: str = "cpu",
) -> tuple[CodecModel, torch.Tensor]:
    """The model of an (H, W, C) uint8 image where training starts (the ARM from
    ``arm_start`` or the shipped prior, the analytic start of the latents and synthesis) on
    ``device``, and the (C, H*W) target there: one owner for train_model and start_bits."""
    h, w, c = image.shape
    model = CodecModel(h, w, arch)
    if arm_start is not None:
        set_arm(model.arm, arm_start)
    elif tcfg.arm_prior:
        load_arm_prior(model.arm)
    model.to(device)
    target = _target(image).to(device)
    if tcfg.init_step > 0:
        step0 = tcfg.init_step * lmbda**0.5
        pyramid_init(model, target.reshape(c, h, w), step0, tcfg.level_step_ratio)
    return model, target


def image_preset(
    name: str, image: np.ndarray, lmbda: float, steps: int | None = None
) -> tuple[ArchConfig, TrainConfig]:
    """:func:`~neural_memory.lossy.encoding.presets.preset` for this image: where the widths
    could depend on what it costs (an image of presets.WIDE_FROM_PIXELS pixels or more), its
    :func:`start_bits` decide them (presets.cost_decides_width).

    >>> img = np.zeros((8, 8, 3), np.uint8)
    >>> image_preset("fast", img, 1e-2)[0].syn_hidden
    (24,)
    """
    h, w, c = image.shape
    arch, tcfg = preset(name, c, h * w, lmbda, steps)
    if not cost_decides_width(h * w):
        return arch, tcfg
    return preset(name, c, h * w, lmbda, steps, start_bits(image, arch, tcfg, lmbda))


def train_model(
    image: np.ndarray,
    arch: ArchConfig,
    tcfg: TrainConfig,
    lmbda: float,
    seed: int = 0,
    progress: Callable[[int, int, dict], None] | None = None,
    rate_target: RateTarget | None = None,
    arm_start: np.ndarray | None = None,
    device: str = "cpu",
) -> tuple[CodecModel, torch.Tensor, float]:
    """Initialise and train the float model of an (H, W, C) uint8 image; returns the model,
    the (C, H*W) target in [0, 1] and the final lambda (rate control may have moved it).
    ``arm_start`` (an arm_prior.arm_vector) overrides the shipped ARM prior. Training runs on
    ``device`` (a GPU through autograd, the CPU in the fused kernels); the model and target
    come back on the CPU, where everything after training runs."""
    h, w, _ = image.shape
    torch.manual_seed(seed)
    model, target = _start_model(image, arch, tcfg, lmbda, arm_start, device)
    progress = _file_rate_progress(progress, model, h * w)
    log = train(model, target, lmbda, tcfg, seed=seed, progress=progress, rate_target=rate_target)
    return model.cpu(), target.cpu(), log.get("lmbda", lmbda)


def fit(
    image: np.ndarray,
    arch: ArchConfig,
    tcfg: TrainConfig,
    lmbda: float,
    seed: int = 0,
    progress: Callable[[int, int, dict], None] | None = None,
    rate_target: RateTarget | None = None,
    device: str = "cpu",
) -> bytes:
    """Train (:func:`train_model`), round the latents, fit the ARM to them
    (:func:`~neural_memory.lossy.encoding.train.finetune_arm`), quantise the networks (the synthesis
    output layer refitted to the rounded latents on the way) and build the payload; the
    pre-concatenation filters (version 4) are rounded first, so that the step search and the
    refit see the decoder's."""
    model, target, lmbda = train_model(
        image, arch, tcfg, lmbda, seed, progress, rate_target, device=device
    )
    levels = [
        np.clip(np.round(y.detach().double().numpy()), -LATENT_MAX, LATENT_MAX).astype(np.int64)
        for y in model.latents
    ]
    prefilter = quantise_prefilter(model) if arch.prefilter else None
    if tcfg.arm_finetune_steps:
        ys = [torch.from_numpy(lv.astype(np.float32)) for lv in levels]
        finetune_arm(model, ys, tcfg.arm_finetune_steps, seed=seed)
    arm, syn = quantise_networks(model, levels, target, lmbda)
    return build_payload(arch, arm, syn, levels, prefilter)


def encode_lossy(
    image: np.ndarray,
    options: EncodeOptions,
    progress: Callable[[int, int, dict], None] | None = None,
) -> bytes:
    """Encode an (H, W, C) uint8 image (C in {1, 3}) to the lossy engine payload, with the
    lossy fields of ``options`` (rate, preset or steps, device, seed, threads). A thread
    count applies to this call only: torch's previous setting is put back on return."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (1, 3):
        raise ImageError("lossy encoder needs an (H, W, 1|3) uint8 array")
    if options.device != "cpu" and not torch.cuda.is_available():
        raise MissingDependencyError(f"device {options.device!r} is not available")
    if options.device == "cpu":  # measured on the CPU; a GPU holds the activations itself
        height, width = image.shape[:2]
        advice = ", or store it with --lossless or --near-lossless, which need far less"
        shortfall = memory_shortfall(LOSSY_ENCODE, height, width, "a lossy encode", advice)
        if shortfall is not None:
            raise ImageError(shortfall)
    rt = None
    if options.rate_lmbda is not None:
        lmbda = options.rate_lmbda
    else:
        lmbda = initial_lmbda(options.bpp, options.psnr)
        if options.bpp is not None or options.psnr is not None:
            rt = RateTarget(bpp=options.bpp, psnr=options.psnr)
    with torch_threads(options.threads), retained_heap():
        arch, tcfg = image_preset(options.preset, image, lmbda, options.steps)
        return fit(image, arch, tcfg, lmbda, options.seed, progress, rt, options.device)
