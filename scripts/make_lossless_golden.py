"""Regenerate the lossless engine's golden vectors in tests/golden/ and print their hashes.

The source images are built with integer arithmetic only (gradients, an xorshift noise and an
edge), so they are identical on every platform. Run only when the payload format changes on
purpose, then paste the printed hashes into tests/test_lossless.py.

    PYTHONPATH=src python scripts/make_lossless_golden.py
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from neural_memory.lossless import encode_lossless

OUT = Path(__file__).resolve().parent.parent / "tests" / "golden"


def integer_image(h: int, w: int, c: int, depth: int, seed: int) -> np.ndarray:
    """Deterministic test image from integer operations only."""
    maxval = (1 << depth) - 1
    yy, xx = np.mgrid[0:h, 0:w].astype(np.uint64)
    state = (yy * 7919 + xx * 104729 + seed * 1_000_003 + 1) & 0xFFFFFFFF
    planes = []
    for ch in range(c):
        state ^= (state << np.uint64(13)) & np.uint64(0xFFFFFFFF)
        state ^= state >> np.uint64(17)
        state ^= (state << np.uint64(5)) & np.uint64(0xFFFFFFFF)
        noise = (state % np.uint64(9)).astype(np.int64) - 4
        grad = ((yy.astype(np.int64) * (3 + ch) + xx.astype(np.int64) * (5 + 2 * ch)) * maxval) // (
            8 * (h + w)
        )
        plane = grad + noise * max(1, maxval // 255) + maxval // 4
        plane[h // 2] = maxval - ch
        planes.append(np.clip(plane, 0, maxval))
    return np.stack(planes, axis=-1).astype(np.uint8 if depth == 8 else np.uint16)


CASES = {
    "lossless_rgb_near0.bin": (24, 32, 3, 8, 0, 11),
    "lossless_rgba_near2.bin": (16, 20, 4, 8, 2, 12),
    "lossless_gray16_near0.bin": (12, 16, 1, 16, 0, 13),
}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    from neural_memory.lossless import decode_lossless

    for name, (h, w, c, depth, near, seed) in CASES.items():
        img = integer_image(h, w, c, depth, seed)
        payload = encode_lossless(img, depth, near)
        (OUT / name).write_bytes(payload)
        out = decode_lossless(payload, h, w, c, depth, near)
        le = out.astype("<u2") if depth == 16 else out
        print(name, len(payload), hashlib.sha256(le.tobytes()).hexdigest())


if __name__ == "__main__":
    main()
