"""Lossy engine: an overfitted latent-grid codec (Cool-chic / C3 family).

Two halves: ``encoding/`` (needs PyTorch) trains the representation of one image and writes
the payload; ``decoding/`` (NumPy and the C core, never PyTorch) rebuilds the image from the
payload in integer arithmetic (its numba modules are the test reference). ``encoding``
imports ``decoding`` (the format it writes), never the other way round. The options it reads
are ``neural_memory.options.EncodeOptions``. See
docs/lossy.md and docs/ARCHITECTURE.md.
"""
