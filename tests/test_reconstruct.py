"""Inpainting through the public API and the ``inpaint`` CLI entry (tiny images, few steps)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from neural_memory.errors import ImageError, OptionError, OutputError
from neural_memory.reconstruct import inpaint
from neural_memory.reconstruct.command import add_inpaint_arguments, run_inpaint
from neural_memory.reconstruct.masks import MASK_KINDS, as_mask, make_mask

FAST = {"steps": 6, "batch": 2, "crop": 24, "width": 8, "threads": 1}


def smooth(height: int = 40, width: int = 48, channels: int = 3) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    planes = [128 + 80 * np.sin(x / (6.0 + c) + y / (9.0 + c)) for c in range(channels)]
    return np.clip(np.stack(planes, axis=2), 0, 255).astype(np.uint8)


def hole(height: int = 40, width: int = 48) -> np.ndarray:
    mask = np.zeros((height, width), bool)
    mask[12:22, 15:27] = True
    mask[30:33, 5:40] = True
    return mask


def masked_mse(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    return float(np.mean((a[mask].astype(float) - b[mask].astype(float)) ** 2))


def test_fills_better_than_mean_and_keeps_known_pixels_exact():
    image, mask = smooth(), hole()
    out = inpaint(image, mask, **FAST)
    assert out.shape == image.shape and out.dtype == image.dtype
    np.testing.assert_array_equal(out[~mask], image[~mask])
    trivial = image.copy()
    trivial[mask] = image[~mask].mean(axis=0).round().astype(np.uint8)
    assert masked_mse(image, out, mask) < 0.1 * masked_mse(image, trivial, mask)


def test_training_does_not_hurt_the_coarse_fill():
    image, mask = smooth(), hole()
    coarse = inpaint(image, mask, steps=0)
    trained = inpaint(image, mask, **{**FAST, "steps": 20})
    assert masked_mse(image, trained, mask) <= 1.5 * masked_mse(image, coarse, mask) + 1.0


def test_deterministic_grayscale_and_16_bit():
    gray = smooth(channels=1)[:, :, 0]
    a = inpaint(gray, hole(), **FAST)
    b = inpaint(gray, hole(), **FAST)
    assert a.shape == gray.shape
    np.testing.assert_array_equal(a, b)
    deep = smooth().astype(np.uint16) * 257
    out = inpaint(deep, hole(), **FAST)
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out[~hole()], deep[~hole()])


def test_tiny_image():
    image = smooth(6, 9)
    mask = np.zeros((6, 9), bool)
    mask[2:4, 3:5] = True
    out = inpaint(image, mask, **FAST)
    assert out.shape == image.shape
    np.testing.assert_array_equal(out[~mask], image[~mask])


def test_empty_mask_returns_a_copy():
    image = smooth()
    out = inpaint(image, np.zeros(image.shape[:2], bool))
    np.testing.assert_array_equal(out, image)
    assert out is not image


@pytest.mark.parametrize("kind", MASK_KINDS)
def test_benchmark_masks_are_seeded_and_of_their_kind(kind):
    a = make_mask(kind, 128, 160, seed=3)
    np.testing.assert_array_equal(a, make_mask(kind, 128, 160, seed=3))
    assert 0.01 < a.mean() < 0.7
    out = inpaint(smooth(128, 160), a, kind=kind, **FAST)
    assert out.shape == (128, 160, 3)


def test_mask_errors():
    image = smooth()
    with pytest.raises(ImageError, match="mask is 10x10 but the image is 48x40"):
        inpaint(image, np.zeros((10, 10), bool))
    with pytest.raises(ImageError, match="hides every pixel"):
        inpaint(image, np.ones((40, 48), bool))
    with pytest.raises(ImageError, match="channels"):
        as_mask(np.zeros((40, 48, 2), np.uint8), 40, 48)
    with pytest.raises(OptionError, match="kind"):
        inpaint(image, hole(), kind="circles")
    with pytest.raises(OptionError, match="unknown inpaint option"):
        inpaint(image, hole(), colour="red")
    rgba_mask = np.zeros((40, 48, 4), np.uint8)
    rgba_mask[..., 3] = 255  # alpha alone does not mark pixels
    rgba_mask[0, 0, 1] = 7
    assert as_mask(rgba_mask, 40, 48).sum() == 1


def _cli(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_inpaint_arguments(parser)
    return parser.parse_args(argv)


def test_cli_fills_and_refuses_to_overwrite(tmp_path: Path, capsys):
    image, mask = smooth(), hole()
    Image.fromarray(image).save(tmp_path / "in.png")
    Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / "mask.png")
    out = tmp_path / "out.png"
    argv = [str(tmp_path / "in.png"), "--mask", str(tmp_path / "mask.png"), "-o", str(out)]
    assert run_inpaint(_cli([*argv, "--steps", "4", "--threads", "1"])) == 0
    filled = np.asarray(Image.open(out))
    np.testing.assert_array_equal(filled[~mask], image[~mask])
    assert "filled 225 of 1,920 pixels" in capsys.readouterr().out
    with pytest.raises(OutputError, match="exists"):
        run_inpaint(_cli([*argv, "--steps", "0"]))
    assert run_inpaint(_cli([*argv, "--steps", "0", "--force"])) == 0
    with pytest.raises(OutputError, match="input"):
        run_inpaint(_cli([*argv[:3], "-o", str(tmp_path / "in.png"), "--force"]))


def test_cli_rejects_a_mask_of_the_wrong_size(tmp_path: Path):
    Image.fromarray(smooth()).save(tmp_path / "in.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "mask.png")
    args = _cli(
        [
            str(tmp_path / "in.png"),
            "--mask",
            str(tmp_path / "mask.png"),
            "-o",
            str(tmp_path / "o.png"),
        ]
    )
    with pytest.raises(ImageError, match="mask is 8x8"):
        run_inpaint(args)
    assert not (tmp_path / "o.png").exists()
