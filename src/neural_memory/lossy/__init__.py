"""Lossy engine: an overfitted latent-grid codec (Cool-chic / C3 family).

``encoder`` (needs PyTorch) trains the representation of one image; ``decoder`` (numpy and
numba only) rebuilds the image from the payload in integer arithmetic. See docs/lossy.md.
"""

from neural_memory.lossy.config import LossyConfig

__all__ = ["LossyConfig"]
