"""Progress bars for long operations (tqdm on stderr, off when not wanted)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from neural_memory.api import Progress


@contextlib.contextmanager
def progress_bar(description: str, *, disable: bool = False) -> Iterator[Progress | None]:
    """Yield a ``progress(done, total, info)`` callback driving a tqdm bar.

    ``info`` values (e.g. live ``bpp`` and ``psnr`` of a lossy fit) are shown after the bar.
    Nothing is drawn when ``disable`` is set or tqdm is missing.
    """
    if disable:
        yield None
        return
    try:
        from tqdm import tqdm
    except ImportError:
        yield None
        return
    bar = tqdm(desc=description, total=None, file=sys.stderr, leave=False, dynamic_ncols=True)

    def update(done: int, total: int, info: dict) -> None:
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
        bar.close()
