"""Write the fuzzer's seed corpus (native/fuzz/corpus) from the lossy and lossless golden
vectors and a few tiny fresh encodes. Run once; the seeds are committed. See fuzz_nmem.c for
the input layout.

    PYTHONPATH=src python native/fuzz/make_corpus.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent / "corpus"


#: metadata sections (format version 2) for the "file_metadata" seed
METADATA = {"ICCP": b"icc", "EXIF": b"II*\x00\x08\x00\x00\x00", "XMP_": b"<x:xmpmeta/>"}


def main() -> None:
    import torch

    import neural_memory as nm
    from neural_memory.container import Header, Mode, pack
    from neural_memory.lossy.decoding.bitstream import ArchConfig
    from neural_memory.lossy.encoding.encoder import fit
    from neural_memory.lossy.encoding.presets import grids
    from neural_memory.lossy.encoding.train import TrainConfig

    torch.set_num_threads(1)
    from neural_memory import _native

    golden = (ROOT / "tests" / "golden" / "lossy_kodim23_32x32.bin").read_bytes()
    yy, xx = np.mgrid[0:12, 0:16]
    gray = ((xx * 13 + yy * 7) % 256).astype(np.uint8)[:, :, None]
    ry, rx = np.mgrid[0:10, 0:12]
    planes = [(rx * 9 + ry * 5) % 256, (rx * 7 + ry * 11 + 40) % 256, (rx * 3 + ry * 13 + 90) % 256]
    rgb = np.stack(planes, -1).astype(np.uint8)
    gray_payload = fit(gray, ArchConfig(grids(1), 4, (6,), 1), TrainConfig(steps=10), lmbda=1e-2)
    seeds = {
        "payload_golden": bytes([0, 31, 31, 1, 0]) + golden,
        "payload_golden_resized": bytes([0, 31, 31, 1, 0x80 | 0x35]) + golden,
        "payload_gray_16x12": bytes([0, 15, 11, 0, 0]) + gray_payload,
        "file_golden": b"\x01" + pack(Header(Mode.LOSSY, 32, 32, 3, 8), {"LOSY": golden}),
        "file_lossless": b"\x01" + nm.encode(np.zeros((3, 5, 1), np.uint8), mode="lossless"),
        # raw lossless payloads (target 2): the goldens, geometry as fuzz_nmem.c reads it
        "payload_lossless_rgba_k2": bytes([2, 19, 15, 2, 2])
        + (ROOT / "tests" / "golden" / "lossless_rgba_near2.bin").read_bytes(),
        "payload_lossless_gray16": bytes([2, 15, 11, 4, 0])
        + (ROOT / "tests" / "golden" / "lossless_gray16_near0.bin").read_bytes(),
        # an 8-bit RGB lossless payload (12x10: all three channel roles, the inner OLS path)
        # and a whole near-lossless file (k = 1)
        "payload_lossless_rgb_k0": bytes([2, 11, 9, 1, 0])
        + _native.lossless_encode(np.ascontiguousarray(rgb), 10, 12, 3, 8, 0),
        "file_near_lossless": b"\x01"
        + nm.encode(rgb[:, :, :1].copy(), mode="near-lossless", near=1),
        "file_metadata": b"\x01"
        + pack(Header(Mode.LOSSY, 32, 32, 3, 8), {"LOSY": golden} | METADATA),
    }
    OUT.mkdir(exist_ok=True)
    for name, data in seeds.items():
        (OUT / name).write_bytes(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
