"""Regenerate the lossy golden vector (a format change: update GOLDEN_SHA256 in the test).

PYTHONPATH=src python scripts/make_lossy_golden.py
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image
from shared_data import KODAK

from neural_memory.lossy.decoding.bitstream import ArchConfig
from neural_memory.lossy.decoding.decoder import decode_lossy
from neural_memory.lossy.encoding.encoder import fit
from neural_memory.lossy.encoding.presets import grids
from neural_memory.lossy.encoding.train import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
SRC_IMAGE = KODAK / "kodim23.png"


def main() -> None:
    import torch

    torch.set_num_threads(1)
    img = np.asarray(Image.open(SRC_IMAGE).convert("RGB"))[200:232, 300:332].copy()
    arch = ArchConfig(grids(3), 8, (20,), 3)
    payload = fit(img, arch, TrainConfig(steps=120), lmbda=1e-3, seed=0)
    out_path = ROOT / "tests" / "golden" / "lossy_kodim23_32x32.bin"
    out_path.write_bytes(payload)
    out = decode_lossy(payload, 32, 32, 3)
    mse = np.mean((out.astype(float) - img) ** 2)
    print(f"{out_path}: {len(payload)} bytes, PSNR {10 * np.log10(255**2 / mse):.2f} dB")
    print("sha256 of decoded pixels:", hashlib.sha256(out.tobytes()).hexdigest())


if __name__ == "__main__":
    main()
