"""Lossy engine: roundtrip sanity, robustness, portability and a golden vector."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neural_memory.errors import FormatError, OptionError
from neural_memory.lossy.config import LossyConfig
from neural_memory.lossy.decoder import decode_lossy

GOLDEN = Path(__file__).parent / "golden" / "lossy_kodim23_32x32.bin"
GOLDEN_SHAPE = (32, 32, 3)
GOLDEN_SHA256 = "f33c495467de7382f6a61eef9c2bb9c0dccab2ae56598093564372c6308e8fa0"
SRC = Path(__file__).resolve().parents[1] / "src"


def _test_image(h: int = 24, w: int = 28, c: int = 3) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([(xx * 9) % 256, (yy * 7 + xx * 3) % 256, 128 + 60 * np.sin(xx / 3.0)], -1)
    return img[..., :c].astype(np.uint8)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    return 10 * np.log10(255.0**2 / max(mse, 1e-12))


@pytest.fixture(scope="module")
def encoded() -> tuple[np.ndarray, bytes]:
    from neural_memory.lossy.encoder import encode_lossy

    img = _test_image()
    return img, encode_lossy(img, LossyConfig(lmbda=1e-3, preset="fast", threads=1))


def test_config_validation():
    with pytest.raises(OptionError):
        LossyConfig(lmbda=1e-3, target_bpp=0.5)
    with pytest.raises(OptionError):
        LossyConfig(preset="turbo")


def test_roundtrip_rgb(encoded):
    img, payload = encoded
    out = decode_lossy(payload, *img.shape)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert _psnr(img, out) > 22
    np.testing.assert_array_equal(out, decode_lossy(payload, *img.shape))


def test_roundtrip_gray():
    from neural_memory.lossy.encoder import encode_lossy

    img = _test_image(c=1)
    payload = encode_lossy(img, LossyConfig(lmbda=1e-3, preset="fast", threads=1))
    out = decode_lossy(payload, *img.shape)
    assert out.shape == img.shape
    assert _psnr(img, out) > 22


def test_render_other_size(encoded):
    img, payload = encoded
    out = decode_lossy(payload, *img.shape, size=(56, 48))
    assert out.shape == (48, 56, 3)
    small = decode_lossy(payload, *img.shape, size=(14, 12))
    assert small.shape == (12, 14, 3)


def test_truncated_payload_raises(encoded):
    img, payload = encoded
    for n in range(0, len(payload), max(1, len(payload) // 40)):
        with pytest.raises(FormatError):
            decode_lossy(payload[:n], *img.shape)


def test_corrupted_payload_never_crashes(encoded):
    img, payload = encoded
    rng = np.random.default_rng(0)
    for _ in range(30):
        bad = bytearray(payload)
        for i in rng.integers(0, len(bad), 3):
            bad[i] ^= int(rng.integers(1, 256))
        try:
            out = decode_lossy(bytes(bad), *img.shape)
            assert out.shape == img.shape
        except FormatError:
            pass


def test_decoder_does_not_import_torch():
    code = (
        "import sys, numpy as np\n"
        "from neural_memory.lossy.decoder import decode_lossy\n"
        f"p = open({str(GOLDEN)!r}, 'rb').read()\n"
        f"decode_lossy(p, *{GOLDEN_SHAPE})\n"
        "assert 'torch' not in sys.modules, 'decoder imported torch'\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_golden_vector():
    out = decode_lossy(GOLDEN.read_bytes(), *GOLDEN_SHAPE)
    assert hashlib.sha256(out.tobytes()).hexdigest() == GOLDEN_SHA256
