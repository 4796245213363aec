"""Torch on one thread for the products whose summation order must not depend on threads.

Why: the encoder must give the same bytes on any thread count (issue 15 point 4), and a
multi-threaded BLAS may split a matrix product's inner dimension between threads, so the
float sums come out in another order on 2 threads than on 1. Measured: the Gram matrix of
393,216 x 49 float64 values differed in its last bits (1e-9), and SOAP's 48 x 48 products
changed the synthesis weights after 24 training steps and the file after 300 (whole
kodim23). The products that feed a decision (the training's optimiser, the quantisation's
step search and refit) run on one thread; the heavy kernels keep their own fixed-split
parallelism.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run the block with torch on one thread, then restore its thread count.

    >>> n = torch.get_num_threads()
    >>> with one_torch_thread():
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == n
    True
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
