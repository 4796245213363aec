"""Lossless and near-lossless engine: online-learning predictive coder with context mixing.

Public entry points are :func:`encode_lossless` and :func:`decode_lossless`; the container
(written by the API layer) stores height, width, channels, bit depth and ``near``.
See docs/lossless.md for the design and the payload format.
"""

from __future__ import annotations

from .api import decode_lossless, encode_lossless

__all__ = ["decode_lossless", "encode_lossless"]
