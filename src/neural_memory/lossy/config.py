"""User-facing options of the lossy engine (no torch import: the API layer reads this)."""

from __future__ import annotations

from dataclasses import dataclass

from neural_memory.errors import OptionError

PRESETS = ("fast", "default", "slow")


@dataclass(frozen=True)
class LossyConfig:
    """Rate is set by exactly one of ``lmbda``, ``target_bpp``, ``target_psnr`` (or none: a
    default lambda). ``preset`` trades encode time for size; ``threads`` caps torch threads."""

    lmbda: float | None = None
    target_bpp: float | None = None
    target_psnr: float | None = None
    preset: str = "default"
    device: str = "cpu"
    seed: int = 0
    threads: int | None = None

    def __post_init__(self) -> None:
        given = [v for v in (self.lmbda, self.target_bpp, self.target_psnr) if v is not None]
        if len(given) > 1:
            raise OptionError("give at most one of lmbda, target_bpp, target_psnr")
        if self.preset not in PRESETS:
            raise OptionError(f"preset must be one of {PRESETS}, got {self.preset!r}")
        if self.lmbda is not None and not (0 < self.lmbda < 10):
            raise OptionError("lmbda must be in (0, 10)")
        if self.target_bpp is not None and not (0.01 <= self.target_bpp <= 8):
            raise OptionError("target_bpp must be in [0.01, 8]")
        if self.target_psnr is not None and not (15 <= self.target_psnr <= 60):
            raise OptionError("target_psnr must be in [15, 60]")
        if self.threads is not None and not (1 <= self.threads <= 256):
            raise OptionError("threads must be in [1, 256]")
