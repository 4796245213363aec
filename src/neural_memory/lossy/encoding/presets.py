"""Presets: model size and training length traded against encode time."""

from __future__ import annotations

from neural_memory.lossy.decoding.bitstream import ArchConfig
from neural_memory.lossy.encoding.train import TrainConfig
from neural_memory.options import PRESET_STEPS

DEFAULT_LMBDA = 1e-3


def initial_lmbda(target_bpp: float | None, target_psnr: float | None) -> float:
    """First guess of lambda for a target (fitted on full kodim23: 2e-3 -> 0.28 bpp / 33.5 dB,
    5e-4 -> 0.49 bpp / 37.1 dB; image dependent, the training loop corrects it)."""
    if target_bpp is not None:
        return min(0.05, max(1e-6, 2e-3 * (target_bpp / 0.28) ** -2.4))
    if target_psnr is not None:
        return min(0.05, max(1e-6, 2e-3 * 4.0 ** (-(target_psnr - 33.5) / 3.64)))
    return DEFAULT_LMBDA


# Network widths. On whole Kodak images (kodim07 + kodim23, 1500 steps, time-to-quality
# --full) synthesis 24 -> 48 hidden units took the BD-rate against AVIF s1 from +30.1 % to
# +22.7 % (64: +22.2 %), and the ARM 16 -> 24 to +22.0 %, for 2-7 % more time per step
# (2 threads, kodim23: 31.1 / 31.6 / 33.3 ms). The quick set's 256x256 crops had ranked
# wider networks worse (32 units +1.9 points at 850 steps): a crop pays ~6x more, relative
# to its size, for the weights.
SYN_HIDDEN = 48
ARM_HIDDEN = 24

LUMA = (0, 1, 2, 3, 4, 5, 6)
CHROMA = (2, 3, 4, 5, 6)


def grids(channels: int) -> tuple[int, ...]:
    """A 7-level pyramid for the first colour axis, 5-level ones (quarter resolution) for the
    other two: see analytic_init.py. Chroma from level 1 cost ~10% more rate on Kodak crops, from
    level 3 lost ~1.4 dB."""
    return LUMA + CHROMA * (channels - 1)


def preset(name: str, channels: int, steps: int | None = None) -> tuple[ArchConfig, TrainConfig]:
    """The model and schedule of a preset (names and step counts: options.PRESET_STEPS);
    ``steps`` overrides the preset's training length.

    Presets differ in training length only: with the current schedule more steps keep
    paying (Kodak crops, mean BD-rate vs WebP: 600 steps +0.9 %, 1200 steps -5.5 %), while
    larger networks did not (their weights cost more than they gain at these step counts).
    ``default`` is sized for the 120 s budget on a 2-core CPU: 3000 steps (C training
    kernels and upsampler, OMP_WAIT_POLICY=PASSIVE) took 81 s (kodim01) and 94 s (kodim23)
    for the whole `neural-memory encode` on 2 threads of a quiet machine (2026-12-05; 1500
    steps took 52 s); on the time-to-quality set 3000 steps are +21.7 % against AVIF s1,
    1500 steps +25.1 %, 850 steps +29.5 %. ``slow`` (2x the steps) for at most
    15 minutes: 6000 steps of older kernels took 5-11 min per Kodak image."""
    arch = ArchConfig(grids(channels), ARM_HIDDEN, (SYN_HIDDEN,), channels)
    return arch, TrainConfig(steps=PRESET_STEPS[name] if steps is None else steps)
