"""Payload layout of the lossy engine (the container adds magic, version, size and CRC).

::

    u8  payload version (2: bicubic upsampling; 3: fixed_point.UP_TABLES[1]'s filters)
    u8  n_grids             1..32   latent grids
    u8  * n_grids           level of each grid, 0..7 (level i is ceil(H/2**i) x ceil(W/2**i))
    u8  arm_hidden          1..32   (ARM: N_CTX -> A -> A -> 2; N_CTX = 12 neighbours + 5 parent)
    u8  n_syn               1..4    number of synthesis linear layers
    u8  * (n_syn - 1)       hidden widths, 1..64 (input width = n_grids, output = channels)
    (u8 q, u8 scale_idx) * (3 + n_syn)   per module: weight step 2**-q and Laplace prior row
    ...                     one rANS stream: every module's weights (row-major, then bias),
                            then the latents grid by grid in coding order (coarse to fine,
                            header order within a level), raster order

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

PAYLOAD_VERSIONS = {2: 0, 3: 1}  # payload version -> its upsampling filter table (UP_TABLES)
MAX_LEVELS = 8
MAX_GRIDS = 32
MAX_ARM_HIDDEN = 32
MAX_SYN_LAYERS = 4
MAX_SYN_WIDTH = 64
MAX_Q = 15
WEIGHT_MAX = (1 << 18) - 1


@dataclass(frozen=True)
class ArchConfig:
    """Shape of the representation; everything the decoder needs besides the weights."""

    grid_levels: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)
    arm_hidden: int = 16
    syn_hidden: tuple[int, ...] = (24,)
    channels: int = 3
    # the upsampler's filters: fixed_point.UP_TABLES[up_table] (named by the payload version)
    up_table: int = 0

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
    version = next(v for v, table in PAYLOAD_VERSIONS.items() if table == arch.up_table)
    head = [version, arch.n_grids, *arch.grid_levels]
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
    arch = ArchConfig(grid_levels, arm_hidden, hidden, channels, PAYLOAD_VERSIONS[version])
    n_mod = len(arch.module_shapes())
    if len(payload) < pos + 2 * n_mod + 4:
        raise FormatError("lossy payload truncated (header)")
    qs = []
    for i in range(n_mod):
        q, si = payload[pos + 2 * i], payload[pos + 2 * i + 1]
        if not (1 <= q <= MAX_Q and 0 <= si < NSCALE):
            raise FormatError("lossy payload: bad quantisation parameters")
        qs.append((q, si))
    return arch, qs, pos + 2 * n_mod


def pull_modules(
    st: np.ndarray, buf: np.ndarray, arch: ArchConfig, qs: list[tuple[int, int]]
) -> list[QuantModule]:
    mods = []
    for (n_in, n_out), (q, si) in zip(arch.module_shapes(), qs, strict=True):
        vals = _pull_ints(st, buf, n_in * n_out + n_out, weight_row(si))
        if st[2] != 0 or np.abs(vals).max() > WEIGHT_MAX:
            raise FormatError("lossy payload: corrupted network weights")
        mods.append(QuantModule(vals[: n_in * n_out].reshape(n_in, n_out), vals[n_in * n_out :], q))
    return mods
