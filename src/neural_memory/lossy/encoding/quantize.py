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
from numba import njit, prange

from neural_memory.entropy.laplace import (
    CDF,
    NFRAC,
    RADIUS,
    max_symbols_per_value,
    push_value,
)
from neural_memory.entropy.rans import PROB_BITS
from neural_memory.lossy.decoding.arm import (
    N_CTX,
    NO_PARENT,
    PAD,
    _position_model,
    coding_order,
    latent_symbols,
    pad_level,
    parent_grids,
)
from neural_memory.lossy.decoding.bitstream import WEIGHT_MAX, QuantModule, prefilter_kernel
from neural_memory.lossy.encoding.model import CHUNK_PIXELS, PREFILTER_Q, CodecModel
from neural_memory.torch_threads import torch_threads

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


def round_with_feedback(layer: torch.nn.Linear, gram: np.ndarray, q: int) -> QuantModule:
    """Quantise ``layer`` at step 2**-q so that its outputs, not its weights, stay close:
    ``gram`` is the (in + 1)^2 Gram matrix of the layer's inputs with a constant 1 appended
    (for the bias), summed over the samples the layer will see.

    Why: rounding every weight to the nearest step leaves errors that add up in the layer's
    output; rounding the weights one at a time and spreading each one's error over the weights
    not yet rounded, in proportion to how their inputs correlate (the nearest-plane rounding
    of GPTQ, Frantar et al. 2023), cancels most of it, so a coarser step (fewer bits) reaches
    the same outputs. Inputs go by decreasing energy and the bias comes last, so the constant
    input absorbs what is left. Whole kodim23 at lambda 0.01 (2500 steps): the synthesis
    output layer 10 -> 7 and the ARM's last two layers 5 -> 4 and 7 -> 5, 273 bytes fewer
    (5.1 % of the file) at 0.006 dB less.

    >>> layer = torch.nn.Linear(3, 2)
    >>> x = np.random.default_rng(0).normal(size=(500, 3))
    >>> x1 = np.hstack([x, np.ones((500, 1))])
    >>> m = round_with_feedback(layer, x1.T @ x1, 3)
    >>> m.w.shape, m.b.shape, m.q
    ((3, 2), (2,), 3)
    """
    w = torch.cat([layer.weight, layer.bias[:, None]], 1).detach().double().numpy()
    k = w.shape[1]
    order = np.concatenate([np.argsort(-np.diag(gram)[:-1], kind="stable"), [k - 1]])
    w = w[:, order]
    g = gram[np.ix_(order, order)]
    # a small damping keeps the inverse defined when an input never varies (a dead unit)
    damp = 1e-6 * float(np.mean(np.diag(g))) + 1e-12
    try:
        u = np.linalg.cholesky(np.linalg.inv(g + damp * np.eye(k))).T  # inverse = u.T @ u
    except np.linalg.LinAlgError:  # not seen; nearest rounding is always possible
        return quantise_layer(layer, q)
    scale = 2.0**q
    ints = np.empty(w.shape, np.int64)
    for i in range(k):
        v = np.clip(np.round(w[:, i] * scale), -WEIGHT_MAX, WEIGHT_MAX)
        ints[:, i] = v
        err = (w[:, i] - v / scale) / u[i, i]
        w[:, i + 1 :] -= np.outer(err, u[i, i + 1 :])
    ints = ints[:, np.argsort(order)]
    wi, bi = ints[:, :-1].T.copy(), ints[:, -1].copy()
    _, si = int_bits(np.concatenate([wi.ravel(), bi]))
    return QuantModule(wi, bi, q, si)


def input_gram(x: torch.Tensor) -> np.ndarray:
    """Gram matrix of (n, in) inputs with a constant 1 appended, in float64."""
    x1 = torch.cat([x, torch.ones(x.shape[0], 1, dtype=x.dtype)], 1).double()
    with torch_threads(1):  # the same sums on any thread count (torch_threads.py)
        return (x1.T @ x1).numpy()


def module_bits(m: QuantModule) -> float:
    return int_bits(np.concatenate([m.w.ravel(), m.b.ravel()]))[0]


def quantise_prefilter(model: CodecModel) -> QuantModule:
    """Round the model's pre-concatenation filters to the file's integers (a, b, c) over
    2**PREFILTER_Q (a kernel over the decoder's bound on the sum of |taps| shrunk toward the
    identity until it fits) and make the model use them from now on (prefilter_ints), so
    that everything after training sees the decoder's filters."""
    k = model.prefilter_kernels().detach().double().numpy()
    abc = np.round(k[:, :3] * 2.0**PREFILTER_Q).astype(np.int64)
    for lv in range(abc.shape[0]):
        while np.abs(prefilter_kernel(abc[lv], PREFILTER_Q)).sum() > 2 << PREFILTER_Q:
            abc[lv] = np.trunc(abc[lv] * 0.9).astype(np.int64)
    model.prefilter_ints = abc
    return QuantModule(abc, np.zeros(0, np.int64), PREFILTER_Q, int_bits(abc)[1])


def set_layer(layer: torch.nn.Linear, m: QuantModule) -> None:
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(m.w.T / 2.0**m.q))
        layer.bias.copy_(torch.from_numpy(m.b / 2.0**m.q))


@njit(cache=True, parallel=True)
def _grid_row_bits(padded, parent, w1, b1, w2, b2, w3, b3, qs):  # pragma: no cover - numba
    """Bits of each row of one grid under the integer ARM (layout: ``latent_symbols``).
    Rows run in parallel: at the encoder every latent, so every context, is known."""
    hp, wp = padded.shape
    h = hp - PAD
    w = wp - 2 * PAD
    room = max_symbols_per_value()
    out = np.zeros(h)
    for y in prange(h):
        ctx = np.empty(N_CTX, np.int64)
        h1 = np.empty(w1.shape[1], np.int64)
        h2 = np.empty(w2.shape[1], np.int64)
        o = np.empty(2, np.int64)
        starts = np.empty(room, np.int32)
        freqs = np.empty(room, np.int32)
        bits = 0.0
        for x in range(w):
            center, row = _position_model(
                padded, parent, y, x, w1, b1, w2, b2, w3, b3, qs, ctx, h1, h2, o
            )
            k = push_value(padded[PAD + y, PAD + x], center, row, CDF, starts, freqs, 0)
            for i in range(k):
                bits += PROB_BITS - np.log2(np.float64(freqs[i]))
        out[y] = bits
    return out


def latent_bits(
    levels: list[np.ndarray], arm: list[QuantModule], grid_levels: tuple[int, ...]
) -> float:
    """Exact bits of the latents under the integer ARM (what the rANS coder will spend).

    Rows in parallel (:func:`_grid_row_bits`), summed in a fixed order, so the result does
    not depend on the thread count; the step search calls this ~18 times per encode."""
    qs = np.array([m.q for m in arm], np.int64)
    parents = parent_grids(grid_levels)
    w = [a for m in arm for a in (m.w, m.b)]
    total = 0.0
    for g in coding_order(grid_levels):
        parent = levels[parents[g]].astype(np.int64) if parents[g] >= 0 else NO_PARENT
        total += float(np.sum(_grid_row_bits(pad_level(levels[g]), parent, *w, qs)))
    return total


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
def output_layer_gram(
    model: CodecModel,
    ys: list[torch.Tensor],
    target_hw: torch.Tensor,
    chunk_pixels: int = CHUNK_PIXELS,
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(Gram of the output layer's inputs with a 1 appended, their products with the target,
    the target's squared sum), float64, in one pass over the image for the latents ``ys``."""
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
        with torch_threads(1):  # the same sums on any thread count (torch_threads.py)
            gram += x1 @ x1.T
            cross += x1 @ tgt.T
        t_sq += float((tgt * tgt).sum())
    return gram, cross, t_sq


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
    stats = output_layer_gram(model, ys, target_hw, chunk_pixels)
    return _refit(model.syn[-1], stats)


def _sse(beta: torch.Tensor, stats: tuple[torch.Tensor, torch.Tensor, float]) -> float:
    """Squared error of output weights ``beta`` ((in + 1, out), bias last) from the Gram."""
    gram, cross, t_sq = stats
    return t_sq - 2 * float((beta * cross).sum()) + float((beta * (gram @ beta)).sum())


def _least_squares(stats: tuple[torch.Tensor, torch.Tensor, float]) -> torch.Tensor:
    gram, cross, _ = stats
    # a tiny ridge keeps the solve defined when a hidden unit never fires
    ridge = 1e-9 * float(gram.diagonal().mean()) + 1e-12
    return torch.linalg.solve(gram + ridge * torch.eye(gram.shape[0], dtype=gram.dtype), cross)


def _refit(out: torch.nn.Linear, stats: tuple[torch.Tensor, torch.Tensor, float]) -> float:
    t_sq = stats[2]
    old = torch.cat([out.weight.T, out.bias[None]]).double()
    beta = _least_squares(stats)
    before, after = _sse(old, stats), _sse(beta, stats)
    if not before - after > 1e-9 * t_sq:  # no real gain (or float noise at the optimum)
        return 0.0
    out.weight.copy_(beta[:-1].T.float())
    out.bias.copy_(beta[-1].float())
    return (before - after) / max(before, 1e-30)


@torch.no_grad()
def arm_input_gram(model: CodecModel, ys: list[torch.Tensor], layer: int) -> np.ndarray:
    """Gram matrix (with a 1 appended) of the inputs of ARM layer ``layer`` over every latent
    position, the layers before it as they are now (already quantised); a quarter of a grid at
    a time (the four phases of a 2x2 lattice), so a large image needs no context matrix for
    all its latents at once."""
    gram = None
    for g in range(len(ys)):
        for phase in ((0, 0), (0, 1), (1, 0), (1, 1)):
            x, _ = model.contexts(ys, g, 2, phase)
            for before in model.arm[:layer]:
                x = torch.relu(before(x))
            part = input_gram(x)
            gram = part if gram is None else gram + part
    return gram


@torch.no_grad()
def quantise_networks(
    model: CodecModel,
    levels: list[np.ndarray],
    target: torch.Tensor,
    lmbda: float,
) -> tuple[list[QuantModule], list[QuantModule]]:
    """Returns (arm modules, synthesis modules); leaves the model's layers dequantised.

    Each module's step minimises D + lambda R as the decoder will see it: a hidden synthesis
    layer is judged with the output layer refitted to it (least squares, as it will be), not
    with the output layer trained for the float weights, which a coarse step throws off (whole
    kodim23, lambda 0.01: at q = 4 the hidden layer gives 22.9 dB before the refit, 31.20 dB
    after, against 31.30 dB at q = 7 for 366 bytes more; the step chosen went 7 -> 4). The
    output layer and the ARM round with error feedback (:func:`round_with_feedback`). On that
    image the file went 5,385 -> 4,770 bytes (-11.4 %) for 0.13 dB; on kodim01 at lambda
    3e-3, 23,388 -> 22,852 bytes for 0.03 dB."""
    n_pix = target.shape[1]
    ys = [torch.from_numpy(lv.astype(np.float32)) for lv in levels]
    target_hw = target.reshape(target.shape[0], model.height, model.width)
    *hidden, out = model.syn

    syn_mods: list[QuantModule] = []
    stats = None
    for layer in hidden:
        w0, b0 = layer.weight.clone(), layer.bias.clone()
        # the output layer's statistics for each step tried: the chosen one's serve the refit
        # below (for the last hidden layer), instead of another pass over the image
        seen: dict[int, tuple[torch.Tensor, torch.Tensor, float]] = {}

        def hidden_cost(q: int, layer=layer, w0=w0, b0=b0, seen=seen) -> float:
            m = quantise_layer(layer, q)
            set_layer(layer, m)
            stats = seen[q] = output_layer_gram(model, ys, target_hw)
            layer.weight.copy_(w0)
            layer.bias.copy_(b0)
            return (
                _sse(_least_squares(stats), stats) / target.numel() + lmbda * module_bits(m) / n_pix
            )

        q, _ = _greedy_q(hidden_cost, 6)
        m = quantise_layer(layer, q)
        syn_mods.append(m)
        set_layer(layer, m)
        stats = seen[q]

    # fitted to the rounded latents and the already quantised hidden layers
    if stats is None:  # no hidden layer
        stats = output_layer_gram(model, ys, target_hw)
    _refit(out, stats)
    gram_out = stats[0].numpy()

    def out_cost(q: int) -> float:
        m = round_with_feedback(out, gram_out, q)
        beta = torch.from_numpy(np.vstack([m.w, m.b[None]]) / 2.0**q)
        return _sse(beta, stats) / target.numel() + lmbda * module_bits(m) / n_pix

    q, _ = _greedy_q(out_cost, 8)
    syn_mods.append(round_with_feedback(out, gram_out, q))
    set_layer(out, syn_mods[-1])

    arm_mods = [quantise_layer(layer, 8) for layer in model.arm]
    for i, layer in enumerate(model.arm):
        gram = arm_input_gram(model, ys, i)

        def arm_cost(q: int, i=i, layer=layer, gram=gram) -> float:
            arm_mods[i] = round_with_feedback(layer, gram, q)
            return latent_bits(levels, arm_mods, model.arch.grid_levels) + sum(
                module_bits(m) for m in arm_mods
            )

        q, _ = _greedy_q(arm_cost, 6)
        arm_mods[i] = round_with_feedback(layer, gram, q)
        set_layer(layer, arm_mods[i])
    return arm_mods, syn_mods
