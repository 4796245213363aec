"""Regenerate a lossy golden vector (a format change: update the SHA-256 in the tests).

    PYTHONPATH=src python scripts/make_lossy_golden.py              # payload version 2
    PYTHONPATH=src python scripts/make_lossy_golden.py --version 3  # the sharper filters
    PYTHONPATH=src python scripts/make_lossy_golden.py --version 4  # and the pre-filters

Each payload version keeps its own vector: version 2 files must decode as they always did.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np
from PIL import Image
from shared_data import KODAK

from neural_memory.lossy.decoding.bitstream import PAYLOAD_VERSIONS, ArchConfig
from neural_memory.lossy.decoding.decoder import decode_lossy
from neural_memory.lossy.encoding.encoder import fit
from neural_memory.lossy.encoding.presets import grids
from neural_memory.lossy.encoding.train import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
SRC_IMAGE = KODAK / "kodim23.png"


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--version", type=int, choices=sorted(PAYLOAD_VERSIONS), default=2)
    version = ap.parse_args().version
    torch.set_num_threads(1)
    img = np.asarray(Image.open(SRC_IMAGE).convert("RGB"))[200:232, 300:332].copy()
    arch = ArchConfig(grids(3), 8, (20,), 3, *PAYLOAD_VERSIONS[version])
    payload = fit(img, arch, TrainConfig(steps=120), lmbda=1e-3, seed=0)
    name = "lossy_kodim23_32x32.bin" if version == 2 else f"lossy_v{version}_kodim23_32x32.bin"
    out_path = ROOT / "tests" / "golden" / name
    out_path.write_bytes(payload)
    out = decode_lossy(payload, 32, 32, 3)
    mse = np.mean((out.astype(float) - img) ** 2)
    print(f"{out_path}: {len(payload)} bytes, PSNR {10 * np.log10(255**2 / mse):.2f} dB")
    print("sha256 of decoded pixels:", hashlib.sha256(out.tobytes()).hexdigest())


if __name__ == "__main__":
    main()
