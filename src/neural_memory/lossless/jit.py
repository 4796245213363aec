"""Whether the engine's numba kernels are already compiled in numba's on-disk cache.

The first lossless run on a machine (or after an upgrade) compiles them, which takes about
:data:`FIRST_COMPILE_SECONDS` on two cores and shows nothing on its own; the command line
announces it with one line when :func:`kernels_cached` is false.
"""

from __future__ import annotations

import os

#: Measured: a first lossless encode of a tiny image with an empty cache, 2 busy cores.
FIRST_COMPILE_SECONDS = 45
#: The kernels whose cache entries are checked (the coding loop of every mode).
_KERNELS = ("code_rows", "_rows")


def kernels_cached() -> bool:
    """False when numba's cache has no entry for the engine's main kernels (a compile is
    coming); True when it has, or when that cannot be told."""
    from neural_memory.lossless import engine

    for name in _KERNELS:
        dispatcher = getattr(engine, name, None)
        cache = getattr(dispatcher, "_cache", None)
        index = getattr(getattr(cache, "_cache_file", None), "_index_path", None)
        if isinstance(index, str) and not os.path.exists(index):
            return False
    return True
