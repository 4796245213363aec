"""Payload layout of the lossy engine (the container adds magic, version, size and CRC).

::

    u8  payload version (2: bicubic upsampling; 3: fixed_point.UP_TABLES[1]'s filters;
                        4: version 3 and the pre-concatenation filters)
    u8  n_grids             1..32   latent grids
    u8  * n_grids           level of each grid, 0..7 (level i is ceil(H/2**i) x ceil(W/2**i))
    u8  arm_hidden          1..32   (ARM: N_CTX -> A -> A -> 2; N_CTX = 12 neighbours + 5 parent)
    u8  n_syn               1..4    number of synthesis linear layers
    u8  * (n_syn - 1)       hidden widths, 1..64 (input width = n_grids, output = channels)
    (u8 q, u8 scale_idx) * (3 + n_syn)   per module: weight step 2**-q and Laplace prior row
    (u8 q, u8 scale_idx)    version 4: the pre-concatenation filters' taps, over 2**q
    ...                     one rANS stream: every module's weights (row-major, then bias),
                            in version 4 then the filters' (a, b, c) for each level 0 ..
                            max level (fixed_point.prefilter_kernel), then the latents grid
                            by grid in coding order (coarse to fine, header order within a
                            level), raster order

All integers in the stream are coded with the committed Laplace table: weights around 0 with
the module's scale row, latents with the ARM's integer mean / scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from neural_memory.entropy.laplace import CDF, NFRAC, NSCALE, pull_value, push_value
from neural_memory.errors import FormatError
from neural_memory.lossy.decoding.arm import N_CTX

#: payload version -> (its upsampling filter table in fixed_point.UP_TABLES, whether the
#: grids go through pre-concatenation filters first)
PAYLOAD_VERSIONS = {2: (0, False), 3: (1, False), 4: (1, True)}
MAX_LEVELS = 8
MAX_GRIDS = 32
MAX_ARM_HIDDEN = 32
MAX_SYN_LAYERS = 4
MAX_SYN_WIDTH = 64
MAX_Q = 15
WEIGHT_MAX = (1 << 18) - 1

#: Pre-concatenation filters (payload version 4): before the upsampler, each latent grid is
#: filtered at its own resolution by its level's separable, symmetric 7-tap kernel
#: (a, b, c, d, c, b, a) / 2**q, with d = 2**q - 2 (a + b + c) (DC gain exactly 1); the file
#: stores (a, b, c) per level as a last module without bias. Sum of |taps| at most
#: 2**(q + 1), so every exact sum of fixed_point.prefilter_grid stays under 2**40
#: (|y| < 2**14, q <= 12) and, shifted to the features' scale, under 2**50.
PREFILTER_MAX_Q = 12


def prefilter_kernel(abc: np.ndarray, q: int) -> np.ndarray:
    """The 7 integer taps (sum 2**q) of one level from its stored (a, b, c).

    >>> prefilter_kernel(np.array([1, -2, 3]), 8).tolist()
    [1, -2, 3, 252, 3, -2, 1]
    """
    a, b, c = (int(v) for v in abc)
    return np.array([a, b, c, (1 << q) - 2 * (a + b + c), c, b, a], np.int64)


def prefilter_ok(abc: np.ndarray, q: int) -> bool:
    """Whether a level's stored taps keep the bound above (what a decoder checks)."""
    return 1 <= q <= PREFILTER_MAX_Q and int(np.abs(prefilter_kernel(abc, q)).sum()) <= 2 << q


@dataclass(frozen=True)
class ArchConfig:
    """Shape of the representation; everything the decoder needs besides the weights."""

    grid_levels: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)
    arm_hidden: int = 16
    syn_hidden: tuple[int, ...] = (24,)
    channels: int = 3
    # the upsampler's filters: fixed_point.UP_TABLES[up_table] (named by the payload version)
    up_table: int = 0
    # each grid filtered at its level by learned 7-tap kernels first (payload version 4)
    prefilter: bool = False

    def __post_init__(self) -> None:
        if (self.up_table, self.prefilter) not in PAYLOAD_VERSIONS.values():
            raise ValueError(
                f"no payload version has upsampler table {self.up_table} with "
                f"{'' if self.prefilter else 'no '}pre-concatenation filters "
                "(the filters come with table 1)"
            )

    @property
    def version(self) -> int:
        """The payload version that stores this architecture."""
        return next(v for v, f in PAYLOAD_VERSIONS.items() if f == (self.up_table, self.prefilter))

    @property
    def n_levels(self) -> int:
        return max(self.grid_levels) + 1

    @property
    def n_grids(self) -> int:
        return len(self.grid_levels)

    def module_shapes(self) -> list[tuple[int, int]]:
        a = self.arm_hidden
        shapes = [(N_CTX, a), (a, a), (a, 2)]
        widths = [self.n_grids, *self.syn_hidden, self.channels]
        shapes += [(widths[i], widths[i + 1]) for i in range(len(widths) - 1)]
        return shapes


@dataclass
class QuantModule:
    """One integer layer: weight (in, out) and bias (out,) at step 2**-q."""

    w: np.ndarray
    b: np.ndarray
    q: int
    scale_idx: int = 0


def weight_row(scale_idx: int) -> int:
    return scale_idx * NFRAC


def push_module(m: QuantModule, starts: np.ndarray, freqs: np.ndarray, k: int) -> int:
    row = weight_row(m.scale_idx)
    for v in np.concatenate([m.w.ravel(), m.b.ravel()]):
        k = push_value(int(v), 0, row, CDF, starts, freqs, k)
    return k


@njit(cache=True)
def _pull_ints(st, buf, n, row):
    out = np.empty(n, np.int64)
    for i in range(n):
        out[i] = pull_value(st, buf, 0, row, CDF)
    return out


def write_header(arch: ArchConfig, modules: list[QuantModule]) -> bytes:
    """The header of ``modules``: the networks' (module_shapes order), then in version 4
    the pre-concatenation filters' (w (levels, 3), no bias)."""
    head = [arch.version, arch.n_grids, *arch.grid_levels]
    head += [arch.arm_hidden, len(arch.syn_hidden) + 1]
    head += list(arch.syn_hidden)
    for m in modules:
        head += [m.q, m.scale_idx]
    return bytes(head)


def read_header(payload: bytes, channels: int) -> tuple[ArchConfig, list[tuple[int, int]], int]:
    """Parse and validate the header; returns (arch, [(q, scale_idx)...], stream offset)."""
    if len(payload) < 2:
        raise FormatError("lossy payload truncated (header)")
    version, n_grids = payload[0], payload[1]
    if version not in PAYLOAD_VERSIONS:
        raise FormatError(f"unsupported lossy payload version {version}")
    if not (1 <= n_grids <= MAX_GRIDS) or len(payload) < 4 + n_grids:
        raise FormatError("lossy payload: bad grid count or truncated header")
    grid_levels = tuple(payload[2 : 2 + n_grids])
    if any(lv >= MAX_LEVELS for lv in grid_levels):
        raise FormatError("lossy payload: bad grid level")
    arm_hidden, n_syn = payload[2 + n_grids], payload[3 + n_grids]
    if not (1 <= arm_hidden <= MAX_ARM_HIDDEN):
        raise FormatError("lossy payload: bad ARM width")
    if not (1 <= n_syn <= MAX_SYN_LAYERS):
        raise FormatError("lossy payload: bad synthesis depth")
    pos = 4 + n_grids
    if len(payload) < pos + n_syn - 1:
        raise FormatError("lossy payload truncated (header)")
    hidden = tuple(payload[pos : pos + n_syn - 1])
    if any(not (1 <= h <= MAX_SYN_WIDTH) for h in hidden):
        raise FormatError("lossy payload: bad synthesis width")
    pos += n_syn - 1
    arch = ArchConfig(grid_levels, arm_hidden, hidden, channels, *PAYLOAD_VERSIONS[version])
    n_mod = len(arch.module_shapes()) + arch.prefilter
    if len(payload) < pos + 2 * n_mod + 4:
        raise FormatError("lossy payload truncated (header)")
    qs = []
    for i in range(n_mod):
        q, si = payload[pos + 2 * i], payload[pos + 2 * i + 1]
        if not (1 <= q <= MAX_Q and 0 <= si < NSCALE):
            raise FormatError("lossy payload: bad quantisation parameters")
        if i == len(arch.module_shapes()) and q > PREFILTER_MAX_Q:
            raise FormatError("lossy payload: bad filter precision")
        qs.append((q, si))
    return arch, qs, pos + 2 * n_mod


def pull_modules(
    st: np.ndarray, buf: np.ndarray, arch: ArchConfig, qs: list[tuple[int, int]]
) -> list[QuantModule]:
    """The networks' modules, then (version 4) the pre-concatenation filters' (checked with
    fixed_point.prefilter_ok)."""
    mods = []
    shapes = arch.module_shapes()
    if arch.prefilter:
        shapes.append((arch.n_levels, 3))
    for i, ((n_in, n_out), (q, si)) in enumerate(zip(shapes, qs, strict=True)):
        filters = i == len(arch.module_shapes())
        n_bias = 0 if filters else n_out
        vals = _pull_ints(st, buf, n_in * n_out + n_bias, weight_row(si))
        if st[2] != 0 or np.abs(vals).max() > WEIGHT_MAX:
            raise FormatError("lossy payload: corrupted network weights")
        m = QuantModule(vals[: n_in * n_out].reshape(n_in, n_out), vals[n_in * n_out :], q, si)
        if filters and not all(prefilter_ok(abc, q) for abc in m.w):
            raise FormatError("lossy payload: corrupted filter taps")
        mods.append(m)
    return mods
