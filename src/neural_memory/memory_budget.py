"""Refuse a whole-image training run that cannot fit in memory, before it starts.

Why: the lossy encoder and the inpainting network train on the whole image at once, so
their memory grows with the pixel count, and a run that outgrows the machine is killed by the
kernel (no message, no file) after what can be hours of work. Each engine's footprint is a
base (Python, PyTorch, the networks) plus bytes per pixel (activations and their gradients,
upsampled grids, the target), measured on the project's AMD machine as peak RSS of a short
run of the CLI at 0.70 and 10.7 Mpixel, 2026-12-07 (:data:`LOSSY_ENCODE`, :data:`INPAINT`).

>>> need = LOSSY_ENCODE.bytes_for(4000 * 3000)
>>> 5.0e9 < need < 5.1e9
True
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Footprint:
    """Peak resident memory of an engine that holds the whole image: base + per pixel."""

    base_bytes: int
    bytes_per_pixel: int

    def bytes_for(self, pixels: int) -> int:
        return self.base_bytes + self.bytes_per_pixel * pixels


#: ``encode --steps 20 --threads 1``: 1.09-1.11 GB at 0.70 Mpixel, 2.23 / 3.55 GB at 10.7
#: Mpixel (lambda 0.01 / 1e-3), so about 250 B a pixel; whole `default` encodes of the CLIC
#: 2025 photographs (2.3-3.1 Mpixel, all 24 of the BD-rate run) went up to 1.87 GB (28d24b9c,
#: 2.73 Mpixel at lambda 1e-3, the bench's record, decode included): 338 B a pixel over the
#: base, so the budget takes 340 (the whole CLI encode of 100a02c2: 1.69 GB of its 1.90).
LOSSY_ENCODE = Footprint(950_000_000, 340)

#: ``inpaint --steps 3 --threads 1`` (RGB): 0.98 GB at 0.70 Mpixel, 6.95 GB at 10.7 Mpixel.
INPAINT = Footprint(560_000_000, 600)


def _meminfo_available(text: str) -> int | None:
    """``MemAvailable`` of a ``/proc/meminfo`` text, in bytes.

    >>> _meminfo_available("MemTotal: 100 kB\\nMemAvailable:   2048 kB\\n")
    2097152
    """
    for line in text.splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None


def _cgroup_headroom() -> int | None:
    """What a cgroup v2 memory limit still allows this process's group, if it sets one."""
    root = Path("/sys/fs/cgroup")
    try:
        limit = (root / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int((root / "memory.current").read_text())
    except (OSError, ValueError):
        return None


def _resident_bytes() -> int:
    """This process's resident memory now (it counts towards the peak already)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def available_bytes() -> int | None:
    """Memory a new allocation can still get without swapping, or None where unknown
    (systems without ``/proc/meminfo`` or ``sysconf``: the check is then skipped)."""
    try:
        found = _meminfo_available(Path("/proc/meminfo").read_text())
    except (OSError, ValueError):
        found = None
    if found is None and hasattr(os, "sysconf"):
        try:
            found = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError):
            found = None
    headroom = _cgroup_headroom()
    if headroom is not None:
        found = headroom if found is None else min(found, headroom)
    return found


def memory_shortfall(
    footprint: Footprint, height: int, width: int, what: str, advice: str
) -> str | None:
    """Why ``what`` on a ``height`` x ``width`` image would not fit, or None if it fits.

    What this process holds already counts as available: it is part of the estimate.
    ``advice`` ends the message (what else the user can do).
    """
    available = available_bytes()
    if available is None:
        return None
    need = footprint.bytes_for(height * width)
    usable = max(available, 0) + _resident_bytes()
    if need <= usable:
        return None
    return (
        f"{what} of this {width}x{height} image ({height * width / 1e6:.1f} Mpixel) needs "
        f"about {need / 1e9:.1f} GB of memory and {usable / 1e9:.1f} GB is available: free "
        f"memory, downscale the image{advice}"
    )
