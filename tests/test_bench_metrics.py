"""Unit tests of the benchmark's metrics and BD-rate: the numbers every report rests on."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neural_memory.bench.bdrate import bd_rate, quality_at_rate
from neural_memory.bench.quality import max_abs_error, ms_ssim, ms_ssim_scales
from neural_memory.metrics import bits_per_pixel, bits_per_sample, psnr


def _photo(h: int = 192, w: int = 200, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    planes = [
        128 + 80 * np.sin(x / (6 + c) + y / (9 + c)) + rng.normal(0, 6, (h, w)) for c in range(3)
    ]
    return np.clip(np.stack(planes, -1), 0, 255).astype(np.uint8)


def _noisy(img: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


def test_rates() -> None:
    assert bits_per_pixel(96, 6, 16) == 8.0
    assert bits_per_sample(96, 6, 16, 3) == pytest.approx(8 / 3)


def test_psnr_known_values() -> None:
    a = np.full((8, 8, 3), 100, np.uint8)
    assert psnr(a, a) == math.inf
    assert psnr(a, a + 1) == pytest.approx(10 * math.log10(255**2))  # MSE 1: 48.13 dB
    # Pooled over channels: error 2 on one channel of three gives MSE 4/3.
    b = a.copy()
    b[..., 0] += 2
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / (4 / 3)))
    assert max_abs_error(a, b) == 2


def test_ms_ssim_properties() -> None:
    img = _photo()
    assert ms_ssim(img, img) == pytest.approx(1.0)
    light, heavy = _noisy(img, 4), _noisy(img, 20)
    s_light, s_heavy = ms_ssim(img, light), ms_ssim(img, heavy)
    assert 0.0 < s_heavy < s_light < 1.0
    assert ms_ssim(light, img) == pytest.approx(s_light)  # symmetric
    # Structure matters more than a small brightness offset.
    shifted = np.clip(img.astype(int) + 3, 0, 255).astype(np.uint8)
    assert ms_ssim(img, shifted) > s_heavy


def test_ms_ssim_scale_count() -> None:
    assert ms_ssim_scales(512, 768) == 5
    assert ms_ssim_scales(161, 161) == 5
    assert ms_ssim_scales(160, 400) == 4
    assert ms_ssim_scales(48, 48) == 3
    img = _photo(48, 48)
    assert 0.0 < ms_ssim(img, _noisy(img, 10)) < 1.0


def test_bd_rate_identity_and_scaling() -> None:
    rate = [0.1, 0.25, 0.5, 0.8, 1.2]
    q = [26.0, 29.0, 32.0, 34.5, 37.0]
    assert bd_rate(rate, q, rate, q) == pytest.approx(0.0, abs=1e-9)
    assert bd_rate(rate, q, [r * 0.9 for r in rate], q) == pytest.approx(-10.0, abs=1e-9)
    assert bd_rate(rate, q, [r * 1.25 for r in rate], q) == pytest.approx(25.0, abs=1e-9)


def test_bd_rate_partial_and_no_overlap() -> None:
    # log-rate linear in PSNR, so PCHIP is exact and a partial overlap still gives -10%.
    q = [26.0, 29.0, 32.0, 34.5]
    rate = [0.1 * math.exp(0.25 * (v - 26)) for v in q]
    q2 = [29.0, 32.0, 34.5, 36.0]
    rate2 = [0.9 * 0.1 * math.exp(0.25 * (v - 26)) for v in q2]
    assert bd_rate(rate, q, rate2, q2) == pytest.approx(-10.0, abs=1e-6)
    assert bd_rate(rate, q, [1.0, 2.0], [40.0, 42.0]) is None
    assert bd_rate(rate, q, [1.0], [30.0]) is None


def test_quality_at_rate() -> None:
    rate = [0.25, 0.5, 1.0]
    q = [28.0, 31.0, 34.0]
    assert quality_at_rate(rate, q, 0.5) == pytest.approx(31.0)
    assert 28.0 < quality_at_rate(rate, q, 0.3) < 31.0
    assert quality_at_rate(rate, q, 2.0) is None


def test_per_image_bd_table_names_each_image_and_the_mean_and_median() -> None:
    """Our lossy codec against another, image by image (summary.per_image_bd, rendered by
    the report): a codec with 20 % smaller files at equal PSNR on one image and 10 % larger
    on the other shows both, and the mean and median of the two (-5 %)."""
    from neural_memory.bench.report import _per_image_section
    from neural_memory.bench.summary import per_image_bd

    recs = []
    for image, factor in (("a.png", 0.8), ("b.png", 1.1)):
        for bpp, q in ((0.5, 30.0), (1.0, 33.0), (2.0, 36.0)):
            recs.append({"status": "ok", "codec": "webp", "image": image, "bpp": bpp, "psnr": q})
            recs.append(
                {"status": "ok", "codec": "nm", "image": image, "bpp": bpp * factor, "psnr": q}
            )
    aggs = {"nm": {"mode": "lossy", "ours": True}, "webp": {"mode": "lossy", "ours": False}}
    per = per_image_bd(recs, aggs)
    assert set(per) == {"nm"}  # only our codecs are rows of a table
    assert abs(per["nm"]["webp"]["a.png"] + 20.0) < 1e-6
    assert abs(per["nm"]["webp"]["b.png"] - 10.0) < 1e-6
    text = "\n".join(_per_image_section(per, "##"))
    assert "| a | -20.0 |" in text and "| b | +10.0 |" in text
    assert "| *mean* | -5.0 |" in text and "| *median* | -5.0 |" in text
