"""Lossless and near-lossless engine: online-learning predictive coder with context mixing.

Public entry points are :func:`encode_lossless` and :func:`decode_lossless` (the C engine of
native/src/lossless.c); ``encode_lossless_numba`` / ``decode_lossless_numba`` run this package's
numba engine, the reference the C engine is tested against byte for byte. The container
(written by the API layer) stores height, width, channels, bit depth and ``near``.
See docs/lossless.md for the design and the payload format.
"""

from __future__ import annotations

from .api import decode_lossless, decode_lossless_numba, encode_lossless, encode_lossless_numba

__all__ = ["decode_lossless", "decode_lossless_numba", "encode_lossless", "encode_lossless_numba"]
