"""Presets: model size and training length traded against encode time."""

from __future__ import annotations

from neural_memory.lossy.bitstream import ArchConfig
from neural_memory.lossy.train import TrainConfig

DEFAULT_LMBDA = 2e-3


LUMA = (0, 1, 2, 3, 4, 5, 6)
CHROMA = (1, 2, 3, 4, 5, 6)


def grids(channels: int) -> tuple[int, ...]:
    """A 7-level pyramid for the first colour axis, 6-level ones (half resolution) for the
    other two: see init.py."""
    return LUMA + CHROMA * (channels - 1)


def preset(name: str, channels: int) -> tuple[ArchConfig, TrainConfig]:
    g = grids(channels)
    if name == "fast":
        return ArchConfig(g, 12, (24,), channels), TrainConfig(steps=150)
    if name == "slow":
        return ArchConfig(g, 16, (32,), channels), TrainConfig(steps=2000)
    return ArchConfig(g, 16, (24,), channels), TrainConfig(steps=400)
