"""Masks of missing pixels: the three seeded kinds the benchmark uses, and validation of
user-supplied masks.

A mask is an ``(H, W)`` bool array, ``True`` where the pixel is unknown. The generators are
also what the inpainting network trains on (it hides extra known pixels with synthetic masks
of the same kind as the real one), so they take a ``numpy.random.Generator`` and a size and
nothing else.
"""

from __future__ import annotations

import numpy as np

from neural_memory.errors import ImageError

MASK_KINDS = ("random", "strokes", "boxes")


def random_mask(rng: np.random.Generator, height: int, width: int, frac: float = 0.5) -> np.ndarray:
    """Independent pixels, each missing with probability ``frac``."""
    return rng.random((height, width)) < frac


def stroke_mask(
    rng: np.random.Generator,
    height: int,
    width: int,
    count: int = 12,
    widths: tuple[int, int] = (3, 6),
    segments: int = 4,
    seg_len: tuple[int, int] = (30, 90),
) -> np.ndarray:
    """``count`` thin random polylines (scribbles, scratches) of width ``widths``."""
    import cv2

    canvas = np.zeros((height, width), np.uint8)
    for _ in range(count):
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        angle = rng.uniform(0, 2 * np.pi)
        thickness = int(rng.integers(widths[0], widths[1] + 1))
        for _ in range(segments):
            angle += rng.uniform(-1.0, 1.0)
            length = rng.uniform(*seg_len)
            nx = float(np.clip(x + length * np.cos(angle), 0, width - 1))
            ny = float(np.clip(y + length * np.sin(angle), 0, height - 1))
            cv2.line(canvas, (round(x), round(y)), (round(nx), round(ny)), 1, thickness)
            x, y = nx, ny
    return canvas.astype(bool)


def box_mask(
    rng: np.random.Generator, height: int, width: int, count: int = 6, size: int = 64
) -> np.ndarray:
    """``count`` non-overlapping ``size`` x ``size`` squares inside the image (fewer if the
    image is too small to place them apart)."""
    mask = np.zeros((height, width), bool)
    size_y, size_x = min(size, max(1, height // 2)), min(size, max(1, width // 2))
    placed = 0
    for _ in range(200 * count):
        if placed == count:
            break
        y = int(rng.integers(0, height - size_y + 1))
        x = int(rng.integers(0, width - size_x + 1))
        pad = mask[max(0, y - 4) : y + size_y + 4, max(0, x - 4) : x + size_x + 4]
        if pad.any():
            continue
        mask[y : y + size_y, x : x + size_x] = True
        placed += 1
    return mask


def make_mask(kind: str, height: int, width: int, seed: int = 0) -> np.ndarray:
    """The benchmark's mask of ``kind`` for an image of this size (deterministic in ``seed``)."""
    rng = np.random.default_rng(seed)
    if kind == "random":
        return random_mask(rng, height, width)
    if kind == "strokes":
        return stroke_mask(rng, height, width)
    if kind == "boxes":
        return box_mask(rng, height, width)
    raise ValueError(f"unknown mask kind {kind!r}; choose one of {', '.join(MASK_KINDS)}")


def as_mask(mask, height: int, width: int) -> np.ndarray:
    """Validate a user mask (array or loaded image) and return it as ``(H, W)`` bool.

    Accepts a 2-D array or an ``(H, W, C)`` image with C = 1, 3 or 4 (nonzero in any colour
    channel = unknown; a fourth channel is alpha and is ignored). Rejects a wrong size and a
    mask that hides every pixel, since then nothing is known to fit.
    """
    array = np.asarray(mask)
    if array.ndim == 3:
        if array.shape[2] not in (1, 3, 4):
            raise ImageError(f"mask must be grayscale, RGB or RGBA, got {array.shape[2]} channels")
        array = array[:, :, :3].any(axis=2) if array.shape[2] != 1 else array[:, :, 0]
    if array.ndim != 2:
        raise ImageError(f"mask must be a 2-D image, got shape {array.shape}")
    if array.dtype.kind not in "biuf":
        raise ImageError(f"mask must hold numbers or booleans, got {array.dtype}")
    if array.shape != (height, width):
        raise ImageError(
            f"mask is {array.shape[1]}x{array.shape[0]} but the image is {width}x{height}"
        )
    out = array != 0
    if out.all():
        raise ImageError("the mask hides every pixel: there is nothing known to fit")
    return out
