"""Reference lossy decoder in numpy + numba: payload -> pixels, integer arithmetic.

The package decodes with the C library (``decoder.decode_lossy`` -> ``neural_memory.native``);
this numba version is kept, unchanged, as the reference the C decoder is tested against
(tests/test_native.py: golden vector, fresh encodes, several output sizes)."""

from __future__ import annotations

import numpy as np

from neural_memory.entropy.rans import rans_decode_init
from neural_memory.errors import FormatError, OptionError
from neural_memory.lossy.decoding.arm import (
    NO_PARENT,
    PAD,
    coding_order,
    decode_level,
    parent_grids,
)
from neural_memory.lossy.decoding.bitstream import QuantModule, pull_modules, read_header
from neural_memory.lossy.decoding.fixed_point import (
    level_shapes,
    resize_features,
    synthesize,
    upsample_grids,
)
from neural_memory.options import check_size

# the decoder holds (n_grids, H, W) int64 features: cap that at 4 GiB whatever a header says
MAX_FEATURE_VALUES = 1 << 29


def decode_latents(
    st: np.ndarray,
    buf: np.ndarray,
    shapes: list[tuple[int, int]],
    arm: list[QuantModule],
    grid_levels: tuple[int, ...],
) -> list[np.ndarray]:
    """All latent grids (in header order), decoded in coding order (coarse to fine)."""
    qs = np.array([m.q for m in arm], np.int64)
    parents = parent_grids(grid_levels)
    grids: list[np.ndarray] = [NO_PARENT] * len(shapes)
    for g in coding_order(grid_levels):
        h, w = shapes[g]
        parent = grids[parents[g]] if parents[g] >= 0 else NO_PARENT
        padded = decode_level(st, buf, h, w, parent, arm[0].w, arm[0].b, arm[1].w, arm[1].b,
                              arm[2].w, arm[2].b, qs)  # fmt: skip
        if st[2] != 0:
            raise FormatError("lossy payload: corrupted or truncated latent stream")
        grids[g] = padded[PAD:, PAD:-PAD].copy()
    return grids


def decode_lossy_reference(
    payload: bytes,
    height: int,
    width: int,
    channels: int,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Decode an engine payload to an (H', W', C) uint8 image.

    ``size=(W', H')`` renders the representation on another grid: the full-resolution latent
    features are resampled (integer bilinear) before the synthesis. Corrupted input raises
    :class:`FormatError`; every count read is bounded by the header sizes.
    """
    if channels not in (1, 3):
        raise FormatError(f"lossy payload: unsupported channel count {channels}")
    if not check_size(width, height):
        raise FormatError("lossy payload: bad image size")
    arch, qs, off = read_header(payload, channels)
    if arch.n_grids * height * width > MAX_FEATURE_VALUES:
        raise FormatError("lossy payload: too many latent grids for this image size")
    buf = np.frombuffer(payload, dtype=np.uint8)
    st = rans_decode_init(buf, off)
    modules = pull_modules(st, buf, arch, qs)
    arm, syn = modules[:3], modules[3 : 3 + len(arch.syn_hidden) + 1]
    prefilter = (modules[-1].w, modules[-1].q) if arch.prefilter else None
    level_hw = level_shapes(height, width, max(arch.grid_levels) + 1)
    shapes = [level_hw[lv] for lv in arch.grid_levels]
    grids = decode_latents(st, buf, shapes, arm, arch.grid_levels)
    feat = upsample_grids(grids, arch.grid_levels, height, width, arch.up_table, prefilter)
    if size is not None:
        out_w, out_h = int(size[0]), int(size[1])
        if not check_size(out_w, out_h):
            raise OptionError("requested output size out of range")
        if arch.n_grids * out_h * out_w > MAX_FEATURE_VALUES:
            raise OptionError("requested output size out of range")
        if (out_h, out_w) != (height, width):
            feat = resize_features(feat, out_h, out_w)
    return synthesize(feat, [(m.w, m.b, m.q) for m in syn])
