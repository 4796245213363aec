"""Refuse a lossy encode that cannot fit in memory, before any training starts.

Why: the lossy encoder trains on the whole image at once, so its memory grows with the
pixel count, and a run that outgrows the machine is killed by the kernel (no message, no
file) after what can be hours of work. Measured on the project's AMD machine (peak RSS of
``neural-memory encode --steps 20 --threads 1``, 2026-12-07): a 0.70-Mpixel photograph
1.09-1.11 GB, a 10.7-Mpixel one 2.23 GB at lambda 0.01 and 3.55 GB at 1e-3; a whole
`default` encode of a 2.8-Mpixel CLIC 2025 photograph at 1e-3 on 2 threads 1.69 GB. So about
0.95 GB for Python, PyTorch and the networks plus 250 bytes per pixel (activations and their
gradients, the upsampled grids, the target), the figures below.

>>> need = lossy_encode_bytes(4000 * 3000)
>>> 3.9e9 < need < 4.0e9
True
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_BYTES = 950_000_000
BYTES_PER_PIXEL = 250


def lossy_encode_bytes(pixels: int) -> int:
    """Peak resident memory of a lossy encode of ``pixels`` pixels, whole process."""
    return BASE_BYTES + BYTES_PER_PIXEL * pixels


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
    (systems without ``/proc/meminfo``: the check is then skipped)."""
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


def memory_shortfall(height: int, width: int) -> str | None:
    """Why a lossy encode of a ``height`` x ``width`` image would not fit, or None if it fits.

    What this process holds already counts as available: it is part of the estimate.
    """
    available = available_bytes()
    if available is None:
        return None
    need = lossy_encode_bytes(height * width)
    usable = max(available, 0) + _resident_bytes()
    if need <= usable:
        return None
    return (
        f"a lossy encode of this {width}x{height} image ({height * width / 1e6:.1f} Mpixel) "
        f"needs about {need / 1e9:.1f} GB of memory and {usable / 1e9:.1f} GB is available: "
        "free memory, downscale the image, or store it with --lossless or --near-lossless, "
        "which need far less"
    )
