"""Lossy encoding is reproducible: the same image and options give the same bytes whatever
the number of threads (numba's and torch's), so a Dask cluster reproduces a local run.

Each encode runs in a fresh interpreter, because numba's thread count can only be lowered
at run time and torch's is process-wide."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("torch")

_SCRIPT = """
import sys, hashlib, dataclasses
import numpy as np, numba, torch
threads = int(sys.argv[1])
numba.set_num_threads(threads)
torch.set_num_threads(threads)
from neural_memory.lossy.encoding.encoder import fit
from neural_memory.lossy.encoding.presets import preset
rng = np.random.default_rng(5)
yy, xx = np.mgrid[0:40, 0:72]
img = np.stack([96 + 60 * np.sin(xx / 7.0), 128 + 50 * np.cos(yy / 5.0), (xx + yy) * 2.0], -1)
img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
arch, tcfg = preset("default", 3)
payload = fit(img, arch, dataclasses.replace(tcfg, steps=120), 1e-3)
print(hashlib.sha256(payload).hexdigest(), len(payload))
"""


def _encode(threads: int) -> str:
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(threads)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return out.stdout.strip().splitlines()[-1]


def test_same_bytes_on_one_and_two_threads():
    import numba

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba was started with one thread")
    one, two = _encode(1), _encode(2)
    assert one == two, f"1 thread: {one}, 2 threads: {two}"
