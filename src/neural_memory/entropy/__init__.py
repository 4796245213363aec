"""Entropy coding: a byte-wise rANS coder in numba and integer probability tables.

Why not constriction: its Python API codes one symbol per call when the distribution depends
on previously decoded symbols (an autoregressive model), and that per-call overhead is far too
slow for the ~520k latents of a Kodak image (see docs/lossy.md for the measured figure). The
coder here runs the whole sequential decode loop inside numba.
"""

from neural_memory.entropy.rans import PROB_BITS, PROB_SCALE, rans_decode_init, rans_encode

__all__ = ["PROB_BITS", "PROB_SCALE", "rans_decode_init", "rans_encode"]
