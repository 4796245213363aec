"""Adapter-level checks of settings that silently change results when wrong."""

from __future__ import annotations

import io

import numpy as np
import pytest

from neural_memory.bench import codecs


def _img() -> np.ndarray:
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:40, 0:56]
    # Channels share one structure (like photos), which is what colour transforms exploit.
    base = 128 + 70 * np.sin(x / 4 + y / 7) + rng.normal(0, 6, x.shape)
    planes = [base + 10 * c + rng.normal(0, 2, x.shape) for c in range(3)]
    return np.clip(np.stack(planes, -1), 0, 255).astype(np.uint8)


def _run(name: str, setting=None) -> tuple[bytes, np.ndarray]:
    spec = codecs.get_codec(name)
    if spec.unavailable():
        pytest.skip(spec.unavailable())
    img = _img()
    data = spec.encode(img, setting)
    return data, spec.decode(data)


@pytest.mark.parametrize("kind", [1, 2, 3])
def test_jpegls_hp_transform_is_decoded_by_charls(kind: int) -> None:
    img = _img()
    data, out = _run(f"jpegls-hp{kind}")
    assert b"mrfx" in data
    np.testing.assert_array_equal(out, img)


def test_colour_transform_helps_jpegls() -> None:
    plain, _ = _run("jpegls-rgb")
    hp2, _ = _run("jpegls-hp2")
    assert len(hp2) < len(plain)


def test_webp_lossy_is_lossy() -> None:
    # imagecodecs.webp_encode defaults to lossless; the adapter must ask for lossy.
    _, out = _run("webp", 50)
    assert np.abs(out.astype(int) - _img()).max() > 0


@pytest.mark.parametrize("name", ["png", "webp-ll", "j2k-ll", "jxl-ll-e7"])
def test_lossless_adapters_are_exact(name: str) -> None:
    _, out = _run(name)
    np.testing.assert_array_equal(out, _img())


def test_jpegls_near_bound() -> None:
    _, out = _run("jpegls-near", 2)
    assert np.abs(out.astype(int) - _img()).max() <= 2


def test_select_groups() -> None:
    names = {s.name for s in codecs.select_codecs(["classic"])}
    assert "jpeg-420" in names and "nm" not in names
    assert {s.name for s in codecs.select_codecs(["ours"])} == {"nm", "nm-ll", "nm-near"}
    assert [s.name for s in codecs.select_codecs(["jpeg-*"], exclude=["*444"])] == ["jpeg-420"]
    with pytest.raises(KeyError):
        codecs.select_codecs(["no-such-codec"])


def test_avif_tune_psnr_reaches_libaom() -> None:
    spec = codecs.get_codec("avif-444-psnr-s1")
    if spec.unavailable():
        pytest.skip(spec.unavailable())
    tuned, _ = _run("avif-444-psnr-s1", 60)
    default, _ = _run("avif-444", 60)
    assert tuned != default
    # The option string really is parsed by libaom: an unknown key is rejected.
    from PIL import Image

    with pytest.raises(Exception, match="codec-specific"):
        Image.fromarray(_img()).save(io.BytesIO(), "AVIF", advanced={"no-such-option": "1"})


def test_j2k_lossless_uses_rct() -> None:
    spec = codecs.get_codec("j2k-ll")
    if spec.unavailable():
        pytest.skip(spec.unavailable())
    import imagecodecs

    with_rct, _ = _run("j2k-ll")
    without = imagecodecs.jpeg2k_encode(_img(), reversible=True, mct=False, codecformat="J2K")
    assert len(with_rct) < len(without)
