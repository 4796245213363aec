"""Torch's thread count for one block of code, put back afterwards.

Two uses. A caller's ``threads`` option (encoding, inpainting) applies to that call only, so
a later call in the same process is not left with it. And some products must sum in the
same order on any thread count, for the encoder to give the same bytes (issue 15 point 4):
a multi-threaded BLAS may split a matrix product's inner dimension between threads.
Measured: the Gram matrix of 393,216 x 49 float64 values differed in its last bits (1e-9)
between 1 and 2 threads, and SOAP's 48 x 48 products changed the synthesis weights after 24
training steps and the file after 300 (whole kodim23). Those products (the training's
optimiser, the quantisation's step search and refit) run under ``torch_threads(1)``; the
heavy kernels keep their own fixed-split parallelism.

torch is imported on first use, so importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with torch on ``n`` threads (``None``: as it is), then restore its
    thread count.

    >>> import torch
    >>> before = torch.get_num_threads()
    >>> with torch_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    import torch

    previous = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
