"""Presets: model size and training length traded against encode time."""

from __future__ import annotations

from neural_memory.lossy.bitstream import ArchConfig
from neural_memory.lossy.train import TrainConfig

DEFAULT_LMBDA = 2e-3


def preset(name: str, channels: int) -> tuple[ArchConfig, TrainConfig]:
    if name == "fast":
        return ArchConfig(7, 12, (16,), channels), TrainConfig(steps=150)
    if name == "slow":
        return ArchConfig(7, 16, (32,), channels), TrainConfig(steps=2000)
    return ArchConfig(7, 16, (24,), channels), TrainConfig(steps=400)
