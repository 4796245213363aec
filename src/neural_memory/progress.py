"""Progress bars for long operations (tqdm on stderr, only on a terminal)."""

from __future__ import annotations

import contextlib
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
