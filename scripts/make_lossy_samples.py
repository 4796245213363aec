"""Encode a few Kodak images into .nmem files for decoder checks and timings (C vs numba,
docs/BENCHMARKS.md "Native core"). Short trainings: the point is realistic payloads, not
quality.

    PYTHONPATH=src python scripts/make_lossy_samples.py OUT_DIR [--kodak DIR]

writes the six files of the BENCHMARKS table (about 25 minutes on one busy core, most of it
the two fast-preset encodes).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image
from shared_data import KODAK

# name, crop (y0, y1, x0, x1) or None, lambda, channels, steps (None: the fast preset's)
SAMPLES = [
    ("kodim01", None, 3e-4, 3, None),
    ("kodim23", None, 1e-3, 3, None),
    ("kodim01", None, 2e-3, 3, 60),
    ("kodim23", None, 1e-3, 3, 60),
    ("kodim14", None, 3e-4, 1, 60),
    ("kodim04", (100, 420, 50, 350), 5e-4, 3, 60),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--kodak", type=Path, default=KODAK)
    args = parser.parse_args()

    import torch

    from neural_memory.container import Header, Mode, pack
    from neural_memory.lossy.encoding.encoder import fit
    from neural_memory.lossy.encoding.presets import preset
    from neural_memory.lossy.encoding.train import TrainConfig

    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, crop, lmbda, channels, steps in SAMPLES:
        img = Image.open(args.kodak / f"{name}.png").convert("RGB" if channels == 3 else "L")
        pixels = np.asarray(img)
        if crop:
            pixels = pixels[crop[0] : crop[1], crop[2] : crop[3]]
        pixels = np.ascontiguousarray(pixels.reshape(pixels.shape[0], pixels.shape[1], channels))
        arch, tcfg = preset("fast", channels, pixels.shape[0] * pixels.shape[1], lmbda)
        if steps is not None:
            tcfg = TrainConfig(steps=steps)
        start = time.time()
        payload = fit(pixels, arch, tcfg, lmbda=lmbda, seed=0)
        h, w, _ = pixels.shape
        data = pack(Header(Mode.LOSSY, w, h, channels, 8), {"LOSY": payload})
        label = "fast" if steps is None else f"{steps}steps"
        path = args.out / f"{name}_{w}x{h}_c{channels}_{label}_l{lmbda:g}.nmem"
        path.write_bytes(data)
        print(f"{path}: {len(data)} bytes, {time.time() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
