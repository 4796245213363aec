"""Progress bars for long operations (tqdm on stderr, only on a terminal), and the notice
before numba compiles an engine's kernels on their first run on a machine."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Iterator

from neural_memory.api import Progress


@contextlib.contextmanager
def progress_bar(description: str, *, disable: bool = False) -> Iterator[Progress | None]:
    """Yield a ``progress(done, total, info)`` callback driving a tqdm bar.

    ``info`` values (e.g. live ``bpp`` and ``psnr`` of a lossy fit) are shown after the bar.
    The bar appears at the first update, so quick operations and early errors print
    nothing; it is off when ``disable`` is set, stderr is not a terminal (logs stay clean),
    or tqdm is missing.
    """
    if disable or not sys.stderr.isatty():
        yield None
        return
    try:
        from tqdm import tqdm
    except ImportError:
        yield None
        return
    bars: list = []

    def update(done: int, total: int, info: dict) -> None:
        if not bars:
            bars.append(tqdm(desc=description, total=total, file=sys.stderr, leave=False))
        bar = bars[0]
        if bar.total != total:
            bar.reset(total=total)
        bar.n = done
        if info:
            bar.set_postfix(
                {k: (f"{v:.3f}" if isinstance(v, float) else v) for k, v in info.items()},
                refresh=False,
            )
        bar.refresh()

    try:
        yield update
    finally:
        for bar in bars:
            bar.close()


#: The numba kernels an engine's first run compiles, and how long that took (measured with an
#: empty NUMBA_CACHE_DIR on 2 busy cores: a tiny lossy encode of 3 steps 29 s instead of 6 s).
#: Only lossy encoding is left: decoding and lossless / near-lossless coding run in the C
#: library, which compiles nothing at run time. The lossy kernels named here run only with
#: numba training kernels (``train_kernels.BACKEND == "numba"``); with the C ones a first
#: encode compiles just the quantiser's small numba functions (a 3-step encode of the bundled
#: parrots crop: 5.3 s with an empty cache, 3.1 s with a warm one), too short for a notice.
FIRST_RUN_KERNELS = {
    "lossy": ("neural_memory.lossy.encoding.train_kernels", ("up_cols", "up_rows"), 25),
}
#: Seconds a run waits before it says it is compiling: a run that fails at once on bad input
#: then prints its one error line and nothing else.
COMPILE_NOTICE_DELAY = 2.0


def kernels_cached(engine: str) -> bool:
    """False when numba's on-disk cache has no entry for an engine's main kernels (so a
    compile is coming); True when it has, when they will not run (C kernels chosen), or when
    that cannot be told."""
    module_name, names, _ = FIRST_RUN_KERNELS[engine]
    module = importlib.import_module(module_name)
    if getattr(module, "BACKEND", "numba") != "numba":
        return True
    for name in names:
        cache = getattr(getattr(module, name, None), "_cache", None)
        index = getattr(getattr(cache, "_cache_file", None), "_index_path", None)
        if isinstance(index, str) and not os.path.exists(index):
            return False
    return True


def compile_notice(engine: str) -> str | None:
    """The one line to show before an engine's first run compiles its kernels, else None."""
    if engine not in FIRST_RUN_KERNELS or kernels_cached(engine):
        return None
    seconds = FIRST_RUN_KERNELS[engine][2]
    return f"first run: compiling kernels, about {seconds} s (once; later runs start at once)"
