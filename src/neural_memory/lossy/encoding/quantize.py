"""Post-training quantisation of the networks: per-module power-of-two step search.

Why power-of-two steps: the decoder rescales with a shift. Each module's step 2**-q is chosen
to minimise the real rate-distortion cost: distortion through the float synthesis with the
dequantised weights, weight bits under the best Laplace prior row, and (for the ARM) the exact
latent bits from the integer ARM that the decoder will run.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from neural_memory.entropy.laplace import CDF, NFRAC, RADIUS, max_symbols_per_value
from neural_memory.entropy.rans import PROB_BITS
from neural_memory.lossy.decoding.arm import (
    NO_PARENT,
    coding_order,
    latent_symbols,
    pad_level,
    parent_grids,
)
from neural_memory.lossy.decoding.bitstream import WEIGHT_MAX, QuantModule
from neural_memory.lossy.encoding.model import CHUNK_PIXELS, CodecModel

_FREQ = np.diff(CDF, axis=1)
# bits of value d under weight row si (centre 0), for |d| <= RADIUS; escapes costed roughly
_BITS = PROB_BITS - np.log2(_FREQ[::NFRAC].astype(np.float64))  # (NSCALE, NSYM)


def int_bits(vals: np.ndarray) -> tuple[float, int]:
    """(bits, best scale index) of integers coded around 0 with one Laplace row."""
    v = vals.ravel().astype(np.int64)
    inside = np.clip(v, -RADIUS - 1, RADIUS + 1) + RADIUS + 1
    esc = np.abs(v) > RADIUS
    extra = np.where(esc, 2 * np.log2(np.maximum(np.abs(v) - RADIUS, 1)) + 1, 0.0).sum()
    costs = _BITS[:, inside].sum(axis=1) + extra
    si = int(np.argmin(costs))
    return float(costs[si]), si


def quantise_layer(layer: torch.nn.Linear, q: int) -> QuantModule:
    w = layer.weight.detach().double().numpy().T  # (in, out)
    b = layer.bias.detach().double().numpy()
    wi = np.clip(np.round(w * 2.0**q), -WEIGHT_MAX, WEIGHT_MAX).astype(np.int64)
    bi = np.clip(np.round(b * 2.0**q), -WEIGHT_MAX, WEIGHT_MAX).astype(np.int64)
    _, si = int_bits(np.concatenate([wi.ravel(), bi]))
    return QuantModule(wi, bi, q, si)


def module_bits(m: QuantModule) -> float:
    return int_bits(np.concatenate([m.w.ravel(), m.b.ravel()]))[0]


def set_layer(layer: torch.nn.Linear, m: QuantModule) -> None:
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(m.w.T / 2.0**m.q))
        layer.bias.copy_(torch.from_numpy(m.b / 2.0**m.q))


def latent_bits(
    levels: list[np.ndarray], arm: list[QuantModule], grid_levels: tuple[int, ...]
) -> float:
    """Exact bits of the latents under the integer ARM (what the rANS coder will spend)."""
    return sum(
        float(np.sum(PROB_BITS - np.log2(freqs.astype(np.float64))))
        for _, freqs in grid_streams(levels, arm, grid_levels)
    )


def latent_stream(
    levels: list[np.ndarray], arm: list[QuantModule], grid_levels: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """rANS symbols (starts, frequencies) of all latent grids, in coding order."""
    parts = list(grid_streams(levels, arm, grid_levels))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def grid_streams(
    levels: list[np.ndarray], arm: list[QuantModule], grid_levels: tuple[int, ...]
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """rANS symbols (starts, frequencies) of each latent grid, in coding order.

    Why per grid, sized for one symbol per latent: a latent can need up to
    ``max_symbols_per_value()`` symbols (escapes), but almost none do; arrays sized for the
    worst case took ~700 bytes per pixel (3 GB for a 2048 x 2048 image). A grid that
    overflows its arrays is simply coded again with worst-case arrays."""
    qs = np.array([m.q for m in arm], np.int64)
    parents = parent_grids(grid_levels)
    w = [a for m in arm for a in (m.w, m.b)]
    for g in coding_order(grid_levels):
        lv = levels[g]
        parent = levels[parents[g]].astype(np.int64) if parents[g] >= 0 else NO_PARENT
        padded = pad_level(lv)
        for cap in (2 * lv.size + 64, max_symbols_per_value() * lv.size + 64):
            starts = np.empty(cap, np.int32)
            freqs = np.empty(cap, np.int32)
            k = latent_symbols(padded, parent, *w, qs, starts, freqs, 0)
            if k >= 0:
                break
        yield starts[:k], freqs[:k]


def _greedy_q(
    cost, q0: int, q_min: int = 2, q_max: int = 15, patience: int = 2
) -> tuple[int, float]:
    """Minimise cost(q) over integers by walking from q0 in both directions, giving up on a
    direction after ``patience`` steps without improvement. The cost is only roughly unimodal
    in q (rounding luck makes single steps non-monotone: a walk that stopped at the first
    worse step lost 0.8 dB on a Kodak crop), and each ARM evaluation runs the integer ARM over
    all latents, so a full sweep is avoided."""
    best_q, best = q0, cost(q0)
    for direction in (1, -1):
        q, worse = best_q + direction, 0
        while q_min <= q <= q_max and worse < patience:
            c = cost(q)
            if c < best:
                best_q, best, worse = q, c, 0
            else:
                worse += 1
            q += direction
    return best_q, best


@torch.no_grad()
def refit_output_layer(
    model: CodecModel,
    ys: list[torch.Tensor],
    target_hw: torch.Tensor,
    chunk_pixels: int = CHUNK_PIXELS,
) -> float:
    """Replace the synthesis output layer by the least-squares fit for the rounded latents
    ``ys``, the hidden layers fixed; returns the relative drop in squared error (0 if the
    trained layer was kept).

    Why: training sees latents with uniform noise, so the output layer it learns is tuned to
    noisy features (it shrinks them, as a Wiener filter would); the decoder sees rounded ones.
    With everything before it fixed the output layer is a linear least-squares problem: one
    pass over the image accumulates a (hidden + 1)^2 Gram matrix, and a small solve gives the
    exact optimum for what the decoder will actually compute.

    >>> from neural_memory.lossy.decoding.bitstream import ArchConfig
    >>> torch.manual_seed(0) is not None
    True
    >>> m = CodecModel(8, 8, ArchConfig((0, 1), 4, (6,), 1))
    >>> ys = [torch.randn(8, 8) * 4, torch.randn(4, 4) * 4]
    >>> target = torch.rand(1, 8, 8)
    >>> before = m.squared_error(ys, target)
    >>> gain = refit_output_layer(m, ys, target)
    >>> m.squared_error(ys, target) <= before, 0 <= gain <= 1
    (True, True)
    """
    *hidden, out = model.syn
    k = out.in_features + 1
    gram = torch.zeros(k, k, dtype=torch.float64)
    cross = torch.zeros(k, out.out_features, dtype=torch.float64)
    t_sq = 0.0
    per_block = max(1, chunk_pixels // model.width)
    for start in range(0, model.height, per_block):
        rows = torch.arange(start, min(start + per_block, model.height))
        feat = model.upsample(ys, rows)
        x = feat.reshape(feat.shape[0], -1)
        for layer in hidden:
            x = torch.relu(torch.addmm(layer.bias[:, None], layer.weight, x))
        x1 = torch.cat([x, torch.ones(1, x.shape[1])]).double()
        tgt = target_hw[:, rows].reshape(target_hw.shape[0], -1).double()
        gram += x1 @ x1.T
        cross += x1 @ tgt.T
        t_sq += float((tgt * tgt).sum())

    def sse(beta: torch.Tensor) -> float:
        return t_sq - 2 * float((beta * cross).sum()) + float((beta * (gram @ beta)).sum())

    old = torch.cat([out.weight.T, out.bias[None]]).double()
    # a tiny ridge keeps the solve defined when a hidden unit never fires
    ridge = 1e-9 * float(gram.diagonal().mean()) + 1e-12
    beta = torch.linalg.solve(gram + ridge * torch.eye(k, dtype=torch.float64), cross)
    before, after = sse(old), sse(beta)
    if not before - after > 1e-9 * t_sq:  # no real gain (or float noise at the optimum)
        return 0.0
    out.weight.copy_(beta[:-1].T.float())
    out.bias.copy_(beta[-1].float())
    return (before - after) / max(before, 1e-30)


@torch.no_grad()
def quantise_networks(
    model: CodecModel,
    levels: list[np.ndarray],
    target: torch.Tensor,
    lmbda: float,
) -> tuple[list[QuantModule], list[QuantModule]]:
    """Returns (arm modules, synthesis modules); leaves the model's layers dequantised."""
    n_pix = target.shape[1]
    ys = [torch.from_numpy(lv.astype(np.float32)) for lv in levels]
    target_hw = target.reshape(target.shape[0], model.height, model.width)

    syn_mods: list[QuantModule] = []
    for layer in model.syn:
        if layer is model.syn[-1]:
            # fitted to the rounded latents and the already quantised hidden layers
            refit_output_layer(model, ys, target_hw)
        w0, b0 = layer.weight.clone(), layer.bias.clone()

        def syn_cost(q: int, layer=layer, w0=w0, b0=b0) -> float:
            m = quantise_layer(layer, q)
            set_layer(layer, m)
            d = model.squared_error(ys, target_hw) / target.numel()
            layer.weight.copy_(w0)
            layer.bias.copy_(b0)
            return d + lmbda * module_bits(m) / n_pix

        q, _ = _greedy_q(syn_cost, 9)
        m = quantise_layer(layer, q)
        syn_mods.append(m)
        set_layer(layer, m)

    arm_mods = [quantise_layer(layer, 8) for layer in model.arm]
    for i, layer in enumerate(model.arm):

        def arm_cost(q: int, i=i, layer=layer) -> float:
            arm_mods[i] = quantise_layer(layer, q)
            return latent_bits(levels, arm_mods, model.arch.grid_levels) + sum(
                module_bits(m) for m in arm_mods
            )

        q, _ = _greedy_q(arm_cost, 7)
        arm_mods[i] = quantise_layer(layer, q)
    return arm_mods, syn_mods
