"""Lossless / near-lossless engine: roundtrips, error bound, robustness, golden vector.

Images are tiny (a few hundred pixels) so the suite stays fast; numba's cache makes a
repeated run load the engine in about 1.5 s (the first run compiles it: about 40 s of CPU).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from neural_memory.errors import FormatError, OptionError
from neural_memory.lossless import decode_lossless, encode_lossless

GOLDEN_DIR = Path(__file__).parent / "golden"
# file: (height, width, channels, depth, near, sha256 of the decoded pixels, little-endian)
# Made by scripts/make_lossless_golden.py; a change here is a format change (bump the engine
# version byte).
GOLDEN_CASES = {
    "lossless_rgb_near0.bin": (
        24,
        32,
        3,
        8,
        0,
        "157578a17d7ed6ebb3d369ae2843b5ee1e1c335b9e99262369a0bec650ba28e5",
    ),
    "lossless_rgba_near2.bin": (
        16,
        20,
        4,
        8,
        2,
        "0fa48e1794738850b9ca31973da065ddd917a119d0651f00d5caeea8643d3534",
    ),
    "lossless_gray16_near0.bin": (
        12,
        16,
        1,
        16,
        0,
        "d39d970cb28bc84c2281fbb6af190be010415860389d50441b45a1b9be042915",
    ),
}


def synthetic(h: int, w: int, c: int, depth: int, seed: int) -> np.ndarray:
    """Smooth gradients + texture + noise, so predictors and contexts all get exercised."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    maxval = (1 << depth) - 1
    planes = []
    for ch in range(c):
        base = (yy * (3 + ch) + xx * (5 - ch)) * maxval / (8 * (h + w))
        tex = np.sin(xx * 0.7 + ch) * np.cos(yy * 0.4) * maxval / 10
        noise = rng.normal(0, maxval / 60, (h, w))
        planes.append(base + tex + noise + maxval / 3)
    img = np.clip(np.stack(planes, axis=-1), 0, maxval)
    img[h // 2, :] = maxval  # a hard edge and saturated samples
    img[:, w // 3] = 0
    return np.rint(img).astype(np.uint8 if depth == 8 else np.uint16)


CASES = [(1, 8), (3, 8), (4, 8), (1, 16), (3, 16)]


@pytest.mark.parametrize(("channels", "depth"), CASES)
def test_lossless_roundtrip(channels: int, depth: int) -> None:
    img = synthetic(13, 21, channels, depth, seed=channels + depth)
    payload = encode_lossless(img, depth)
    out = decode_lossless(payload, 13, 21, channels, depth)
    assert out.dtype == img.dtype
    np.testing.assert_array_equal(out, img)


@pytest.mark.parametrize("near", [1, 2, 4, 16])
@pytest.mark.parametrize(("channels", "depth"), [(3, 8), (1, 16)])
def test_near_lossless_error_bound(near: int, channels: int, depth: int) -> None:
    img = synthetic(11, 17, channels, depth, seed=near)
    payload = encode_lossless(img, depth, near)
    out = decode_lossless(payload, 11, 17, channels, depth, near)
    err = np.abs(out.astype(np.int64) - img.astype(np.int64))
    assert err.max() <= near


def test_random_images_property() -> None:
    """Seeded random images of random shapes: exact at near=0, bounded otherwise."""
    rng = np.random.default_rng(1234)
    for _ in range(12):
        h, w = int(rng.integers(1, 9)), int(rng.integers(1, 9))
        c = int(rng.choice([1, 3, 4]))
        depth = int(rng.choice([8, 16]))
        near = int(rng.choice([0, 0, 1, 3, 7, 40]))
        img = rng.integers(0, 1 << depth, (h, w, c)).astype(np.uint8 if depth == 8 else np.uint16)
        out = decode_lossless(encode_lossless(img, depth, near), h, w, c, depth, near)
        assert np.abs(out.astype(np.int64) - img.astype(np.int64)).max() <= near


def test_progress_is_reported() -> None:
    img = synthetic(40, 8, 1, 8, seed=3)
    calls: list[tuple[int, int]] = []
    payload = encode_lossless(img, 8, progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (40, 40)
    calls.clear()
    decode_lossless(payload, 40, 8, 1, 8, progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (40, 40)


def test_truncated_and_corrupted_payloads_never_crash() -> None:
    img = synthetic(12, 12, 3, 8, seed=7)
    payload = encode_lossless(img, 8)
    n = len(payload)
    for cut in sorted({0, 1, 2, 4, 5, 6, 9, n // 4, n // 2, 3 * n // 4, n - 2, n - 1}):
        with pytest.raises(FormatError):
            decode_lossless(payload[:cut], 12, 12, 3, 8)
    with pytest.raises(FormatError):
        decode_lossless(payload + b"\0\0", 12, 12, 3, 8)
    rng = np.random.default_rng(0)
    for _ in range(12):
        bad = bytearray(payload)
        i = int(rng.integers(1, len(bad)))
        bad[i] ^= int(rng.integers(1, 256))
        try:
            out = decode_lossless(bytes(bad), 12, 12, 3, 8)
        except FormatError:
            continue
        assert out.shape == (12, 12, 3)  # garbage is allowed, a crash is not


def test_option_errors() -> None:
    img = synthetic(4, 4, 3, 8, seed=1)
    with pytest.raises(OptionError):
        encode_lossless(img, 8, near=256)
    with pytest.raises(OptionError):
        encode_lossless(img, 8, near=-1)
    with pytest.raises(OptionError):
        encode_lossless(img.astype(np.uint16), 8)
    with pytest.raises(OptionError):
        encode_lossless(np.zeros((4, 4, 2), np.uint8), 8)
    with pytest.raises(OptionError):
        encode_lossless(img, 12)
    with pytest.raises(OptionError):
        decode_lossless(b"\x01" * 10, 4, 4, 3, 8, near=300)


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden_vectors(name: str) -> None:
    h, w, c, depth, near, sha = GOLDEN_CASES[name]
    payload = (GOLDEN_DIR / name).read_bytes()
    out = decode_lossless(payload, h, w, c, depth, near)
    le = out.astype("<u2") if depth == 16 else out
    assert hashlib.sha256(le.tobytes()).hexdigest() == sha
    if near == 0:  # the encoder must be deterministic too
        assert encode_lossless(out, depth, near) == payload
