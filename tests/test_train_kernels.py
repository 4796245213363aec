"""The numba training kernels (train_kernels.py) must optimise exactly the loss that the
PyTorch autograd path defines: same values, same gradients, to float32 rounding."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from neural_memory.lossy.decoding.bitstream import ArchConfig  # noqa: E402
from neural_memory.lossy.encoding import train as train_mod  # noqa: E402
from neural_memory.lossy.encoding.model import CodecModel  # noqa: E402
from neural_memory.lossy.encoding.presets import grids  # noqa: E402


def _model(
    h: int, w: int, hidden: int, seed: int = 0, up_table: int = 0, prefilter: bool = False
) -> CodecModel:
    torch.manual_seed(seed)
    arch = ArchConfig(grids(3), 8, (hidden,), 3, up_table=up_table, prefilter=prefilter)
    model = CodecModel(h, w, arch)
    with torch.no_grad():
        for y in model.latents:
            y.normal_(0, 3)
        for p in [*model.syn.parameters(), *model.arm.parameters()]:
            p.normal_(0, 0.3)
        if prefilter:  # filters away from the identity, each level its own
            model.prefilter[:, :3].normal_(0, 0.2)
    return model


def _distortion(model, kernels: bool, rows, chunk: int):
    model.use_kernels = kernels
    model.zero_grad()
    leaves = [y.detach().clone().requires_grad_() for y in model.latents]
    target = torch.rand(3, model.height, model.width, generator=torch.Generator().manual_seed(1))
    sse = model.squared_error(leaves, target, rows, chunk_pixels=chunk, backward_scale=0.01)
    grads = [leaf.grad.clone() for leaf in leaves]
    return sse, grads + [p.grad.clone() for p in train_mod.synthesis_params(model)]


@pytest.mark.parametrize(("up_table", "prefilter"), [(0, False), (1, False), (1, True)])
@pytest.mark.parametrize("backend", ["numba", "c", "c-generic"])
@pytest.mark.parametrize(
    ("h", "w", "hidden", "subset"),
    [(37, 53, 12, True), (21, 26, 10, False), (5, 3, 8, False), (64, 40, 24, True)],
)
def test_fused_distortion_matches_autograd(
    h, w, hidden, subset, backend, up_table, prefilter, monkeypatch
):
    """Odd sizes exercise the upsampler's clamped borders, hidden 10 the padding to four
    units, and a chunk of a few rows the block-by-block accumulation; with the C kernels,
    the features built block by block from the coarse stack (train_kernels.synth_sse_rows).
    Both filter tables: the kernels take each stage's taps (the autograd path's operators
    follow the decoder's table, test_lossy); with version 4's pre-concatenation filters
    (prefilter.py), whose taps' gradient is compared too."""
    from neural_memory.lossy.encoding import train_kernels

    if backend != "numba" and train_kernels._train_native is None:
        pytest.skip("C training kernels not built")
    monkeypatch.setattr(train_kernels, "BACKEND", backend)
    model = _model(h, w, hidden, up_table=up_table, prefilter=prefilter)
    assert model.fused_cpu
    rows = torch.tensor(sorted({0, 2, 3, h // 2, h - 1})) if subset else None
    sse_ref, g_ref = _distortion(model, False, rows, h * w)
    sse, g = _distortion(model, True, rows, 3 * w + 1)
    assert sse == pytest.approx(sse_ref, rel=1e-5)
    for a, b in zip(g, g_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * float(b.abs().max()) + 1e-7)


def test_fused_gradients_accumulate_over_calls_with_filters():
    """Two distortion calls on the same leaves add their gradients, as autograd does: the
    filters' kernels keep buffers from call to call, which must not alias a stored .grad."""
    model = _model(23, 31, 12, up_table=1, prefilter=True)
    rows = [torch.tensor([0, 5, 9]), torch.tensor([3, 4, 22])]
    target = torch.rand(3, 23, 31, generator=torch.Generator().manual_seed(1))
    grads = {}
    for kernels in (False, True):
        model.use_kernels = kernels
        model.zero_grad()
        leaves = [y.detach().clone().requires_grad_() for y in model.latents]
        for r in rows:
            model.squared_error(leaves, target, r, backward_scale=0.01)
        grads[kernels] = [leaf.grad.clone() for leaf in leaves] + [model.prefilter.grad.clone()]
    for a, b in zip(grads[True], grads[False], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * float(b.abs().max()) + 1e-7)


@pytest.mark.parametrize(("h", "w", "stride"), [(37, 53, 1), (130, 90, 2)])
def test_fused_rate_matches_autograd(h, w, stride):
    model = _model(h, w, 12)
    ys = [y.detach().clone().requires_grad_() for y in model.latents]
    model.zero_grad()
    bits_ref = model.rate_bits(ys, stride, torch.Generator().manual_seed(3))
    (0.01 * bits_ref).backward()
    g_ref = [y.grad.clone() for y in ys] + [p.grad.clone() for p in model.arm.parameters()]
    model.zero_grad()
    bits, g_ys = model.rate_bits_fused(ys, stride, torch.Generator().manual_seed(3), 0.01)
    g = list(g_ys) + [p.grad for p in model.arm.parameters()]
    assert bits == pytest.approx(float(bits_ref.detach()), rel=1e-5)
    for a, b in zip(g, g_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4 * float(b.abs().max()) + 1e-7)


@pytest.mark.parametrize("t", [0.3, 0.0])
def test_quantization_proxy_matches_autograd(t):
    y = torch.linspace(-3.2, 2.9, 101, requires_grad=True)
    u = torch.rand(101, generator=torch.Generator().manual_seed(0)) - 0.5
    ref = train_mod.soft_round(train_mod.soft_round(y, t) + u, t) if t > 0 else y + u
    ref.sum().backward()
    p, d = train_mod.proxy_and_derivative(y.detach(), u, t)
    np.testing.assert_allclose(p.numpy(), ref.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(d.numpy(), y.grad.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mixed", [False, True])
def test_fused_training_step_matches_autograd(mixed):
    """A whole step (proxies, distortion on a row subset, rate): same latent gradients (the
    fused step returns them in parts, which Adam combines)."""
    from neural_memory.lossy.encoding.optim import _combine
    from neural_memory.lossy.encoding.train import TrainConfig, _autograd_step, _fused_step

    cfg = TrainConfig(mixed=mixed)
    model = _model(29, 34, 12)
    target = torch.rand(3, 29, 34, generator=torch.Generator().manual_seed(2))
    rows = torch.tensor([1, 4, 5, 20, 28])
    results = []
    for step_fn, kernels in ((_autograd_step, False), (_fused_step, True)):
        model.use_kernels = kernels
        model.zero_grad()
        for y in model.latents:
            y.grad = None
        torch.manual_seed(7)
        n_values = 3 * rows.shape[0] * 34
        gen = torch.Generator().manual_seed(5)
        mse, bits, parts = step_fn(model, cfg, target, rows, n_values, 1e-3, True, 0.2, gen)
        grads = (
            [y.grad.clone() for y in model.latents]
            if parts is None
            else [_combine(p) for p in parts]
        )
        results.append((mse, bits, grads))
    (mse_a, bits_a, g_a), (mse_b, bits_b, g_b) = results
    assert mse_b == pytest.approx(mse_a, rel=1e-5)
    assert bits_b == pytest.approx(bits_a, rel=1e-5)
    for a, b in zip(g_b, g_a, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4 * float(b.abs().max()) + 1e-7)


# ---- the C kernels (native/train/) against the numba ones ------------------------------------
tk = pytest.importorskip("neural_memory.lossy.encoding.train_kernels")
needs_c = pytest.mark.skipif(tk._train_native is None, reason="C training kernels not built")
C_BACKENDS = ["c", "c-avx2", "c-generic"]  # the best ISA here, AVX2 at most, plain C


def _close(a, b, rtol=1e-4):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * float(np.abs(b).max()) + 1e-7)


@needs_c
@pytest.mark.parametrize("backend", C_BACKENDS)
@pytest.mark.parametrize(
    ("g_n", "n", "h_n", "c_n"),
    [(17, 5000, 24, 3), (5, 7, 10, 1), (32, 4099, 13, 3), (17, 192 * 3, 48, 3), (1, 300, 4, 1)],
)
def test_c_synthesis_matches_numba(backend, g_n, n, h_n, c_n):
    """Sizes cover a partial last block, fewer pixels than one vector, hidden widths that are
    not multiples of the register tile, any G, one or three channels."""
    rng = np.random.default_rng(g_n * n)
    feat = rng.normal(size=(g_n, n)).astype(np.float32)
    target = rng.normal(size=(c_n, n)).astype(np.float32)
    w1 = (rng.normal(size=(h_n, g_n)) * 0.3).astype(np.float32)
    b1 = (rng.normal(size=h_n) * 0.1).astype(np.float32)
    w2 = (rng.normal(size=(c_n, h_n)) * 0.3).astype(np.float32)
    b2 = rng.normal(size=c_n).astype(np.float32)
    ref_g, got_g = np.empty_like(feat), np.empty_like(feat)
    sse_ref, ref = tk.synth_sse(feat, target, w1, b1, w2, b2, 0.01, ref_g, backend="numba")
    sse, got = tk.synth_sse(feat, target, w1, b1, w2, b2, 0.01, got_g, backend=backend)
    assert sse == pytest.approx(sse_ref, rel=1e-5)
    for a, b in zip([*got, got_g], [*ref, ref_g], strict=True):
        assert a.shape == b.shape
        _close(a, b)
    sse_fwd, _ = tk.synth_sse(feat, target, w1, b1, w2, b2, 0.01, None, backend=backend)
    assert sse_fwd == pytest.approx(sse_ref, rel=1e-5)


@needs_c
@pytest.mark.parametrize("backend", C_BACKENDS)
@pytest.mark.parametrize("t", [0.35, 0.08])
@pytest.mark.parametrize("n", [1, 7, 8, 29, 4096])
def test_c_proxy_matches_float64(backend, t, n):
    """The C rounding proxy and its derivative against the torch formula in float64 (all
    lengths: whole vectors and the scalar tail), latents far from 0 included."""
    gen = torch.Generator().manual_seed(n)
    y = (torch.randn(n, generator=gen) * 30).double()  # float32 values, float64 arithmetic
    noise = (torch.randn(n, generator=gen) * 0.2).double()
    ref_p, ref_d = train_mod.proxy_and_derivative(y, noise, t)
    p, d = tk.proxy_c(y.float().numpy(), noise.float().numpy(), t, backend=backend)
    np.testing.assert_allclose(p, ref_p.numpy(), rtol=0, atol=5e-5)
    np.testing.assert_allclose(d, ref_d.numpy(), rtol=2e-3, atol=1e-5)


@needs_c
@pytest.mark.parametrize("backend", C_BACKENDS)
def test_c_gauss_is_standard_normal(backend, monkeypatch):
    """The C noise: the moments and tail masses of N(0, 1) on a million samples, a
    different stream for another key, the same samples however the indices are split into
    calls, and the training's proxy (its noise from draw_noise) equal to the proxy of those
    samples."""
    from scipy import stats

    z = tk.gauss_c((1_000_000,), 1.0, 12345, backend=backend).astype(np.float64)
    assert abs(z.mean()) < 0.005 and abs(z.std() - 1) < 0.005
    assert abs(stats.skew(z)) < 0.01 and abs(stats.kurtosis(z)) < 0.03
    for k in (1.0, 2.0, 3.0):  # two-sided tail mass against the normal's
        assert np.mean(np.abs(z) > k) == pytest.approx(2 * stats.norm.sf(k), rel=0.05)
    # the uniforms behind the samples: Kolmogorov-Smirnov against U(0, 1)
    assert stats.kstest(stats.norm.cdf(z[:100_000]), "uniform").pvalue > 1e-3
    other = tk.gauss_c((1000,), 1.0, 12346, backend=backend)
    assert abs(np.corrcoef(z[:1000], other)[0, 1]) < 0.1
    whole = tk.gauss_c((1003,), 0.2, 99, backend=backend)
    a, b = np.empty(500, np.float32), np.empty(503, np.float32)
    tk._train_native.gauss(a, 0, 0.2, 99, tk._CAPS[backend])
    tk._train_native.gauss(b, 500, 0.2, 99, tk._CAPS[backend])
    np.testing.assert_array_equal(np.concatenate([a, b]), whole)
    generic = tk.gauss_c((1003,), 0.2, 99, backend="c-generic")  # float rounding apart
    np.testing.assert_allclose(whole, generic, rtol=2e-4, atol=1e-6)
    y = (np.random.default_rng(0).normal(size=1003) * 3).astype(np.float32)
    monkeypatch.setattr(tk, "BACKEND", backend)
    cfg = train_mod.TrainConfig(noise_sigma0=0.2, noise_sigma1=0.2)
    lat = torch.from_numpy(y)
    p, d = (
        a.numpy()
        for a in train_mod.proxy_and_derivative(lat, train_mod.draw_noise(lat, cfg, 0.5, 99), 0.2)
    )
    p_ref, d_ref = tk.proxy_c(y, whole, 0.2, backend=backend)
    np.testing.assert_array_equal(p, p_ref)
    np.testing.assert_array_equal(d, d_ref)


@needs_c
@pytest.mark.parametrize("backend", C_BACKENDS)
@pytest.mark.parametrize("n", [1, 7, 8, 29, 4096])
@pytest.mark.parametrize("form", ["g", "g*d", "g*d+g*d"])
def test_c_adam_matches_torch_formula(backend, n, form):
    """Three updates of the one-pass C Adam against optim.Adam's torch arithmetic (the
    gradient given whole, times a derivative, or as the training step's two chained parts)."""
    from neural_memory.lossy.encoding.optim import _combine

    gen = torch.Generator().manual_seed(n)
    p_ref = torch.randn(n, generator=gen)
    p, m, v = p_ref.numpy().copy(), np.zeros(n, np.float32), np.zeros(n, np.float32)
    m_ref, v_ref = torch.zeros(n), torch.zeros(n)
    b1, b2, eps, lr = 0.9, 0.999, 1e-8, 0.1
    for t in range(1, 4):
        g1, d1, g2, d2 = (torch.randn(n, generator=gen) for _ in range(4))
        forms = {"g": (g1, None, None, None), "g*d": (g1, d1, None, None)}
        parts = forms.get(form, (g1, d1, g2, d2))
        grad = _combine(parts)
        c1, c2 = 1 - b1**t, 1 - b2**t
        m_ref.mul_(b1).add_(grad, alpha=1 - b1)
        v_ref.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        p_ref.addcdiv_(m_ref, (v_ref / c2).sqrt_().add_(eps), value=-lr / c1)
        arrays = tuple(None if a is None else a.numpy() for a in parts)
        assert tk.adam_c(p, m, v, arrays, lr / c1, (b1, b2), c2, eps, backend=backend)
    np.testing.assert_allclose(m, m_ref.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(v, v_ref.numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(p, p_ref.numpy(), rtol=1e-5, atol=1e-5)
    assert not tk.adam_c(p, m, v, arrays, lr, (b1, b2), c2, eps, backend="numba")


@needs_c
@pytest.mark.parametrize("backend", C_BACKENDS)
@pytest.mark.parametrize("a_n", [16, 12, 32])
@pytest.mark.parametrize("scale", [0.01, 0.0])
def test_c_rate_matches_numba(backend, a_n, scale):
    from neural_memory.lossy.decoding.arm import CTX_OFFSETS, PARENT_OFFSETS

    rng = np.random.default_rng(a_n)
    shapes = [(37, 53), (19, 27), (10, 14), (130, 90), (5, 3)]
    grids = [(rng.normal(size=s) * 3).astype(np.float32) for s in shapes]
    parents = [1, 2, -1, -1, 2]
    n_ctx = CTX_OFFSETS.shape[0] + PARENT_OFFSETS.shape[0]
    layers = []
    for n_out, n_in in ((a_n, n_ctx), (a_n, a_n), (2, a_n)):
        w = (rng.normal(size=(n_out, n_in)) * 0.3).astype(np.float32)
        layers.append((w, (rng.normal(size=n_out) * 0.1).astype(np.float32)))
    for strides, phases in (
        ([1] * 5, [(0, 0)] * 5),
        ([2, 1, 1, 2, 1], [(1, 0), (0, 0), (0, 0), (0, 1), (0, 0)]),
    ):
        args = (grids, parents, strides, phases, layers, (-3.5, 3.4), scale)
        offs = (CTX_OFFSETS, PARENT_OFFSETS)
        bits_ref, gg_ref, gl_ref = tk.arm_rate(*args, *offs, backend="numba")
        bits, gg, gl = tk.arm_rate(*args, *offs, backend=backend)
        assert bits == pytest.approx(bits_ref, rel=1e-5)
        for a, b in zip(gg + gl, gg_ref + gl_ref, strict=True):
            assert a.shape == b.shape
            _close(a, b, 1e-3 if backend == "c-generic" else 1e-4)


def _upsample(up, grids, rows, backend):
    """The features of ``rows`` (forward) and a function applying the adjoint to them."""

    def adjoint(g):
        coarse = up.coarse(grids, backend)
        g_coarse = None if coarse is None else np.zeros_like(coarse)
        g_grids = [np.zeros_like(x) for x in grids]
        up.rows_adjoint(g, rows, g_coarse, g_grids, backend)
        up.coarse_adjoint(g_coarse, g_grids, backend)
        return g_grids

    return up.rows(up.coarse(grids, backend), grids, rows, backend), adjoint


@needs_c
@pytest.mark.parametrize("backend", C_BACKENDS)
@pytest.mark.parametrize(("h", "w"), [(37, 53), (5, 3), (1, 1), (2, 9), (64, 40)])
@pytest.mark.parametrize(("subset", "table"), [(False, 0), (True, 0), (True, 1)])
def test_c_upsampler_matches_numba(backend, h, w, subset, table):
    """The C upsampler (forward to full resolution and its adjoint) against the numba one, on
    odd sizes with levels down to 1 x 1 (7 levels for the first axis, see presets.grids), on
    all rows and on a subset; and the adjoint is the transpose: <A x, g> = <x, A^T g>."""
    rng = np.random.default_rng(h * 100 + w)
    levels = grids(3)
    up = tk.Upsampler(levels, h, w, table)
    xs = [rng.normal(size=up.shapes[lv]).astype(np.float32) for lv in levels]
    rows = np.array(sorted({0, 2 % h, h // 2, h - 1})) if subset else np.arange(h)
    ref, adj_ref = _upsample(up, xs, rows, "numba")
    got, adj = _upsample(up, xs, rows, backend)
    assert got.shape == ref.shape
    _close(got, ref, 1e-5)
    g = rng.normal(size=ref.shape).astype(np.float32)
    g_ref, g_got = adj_ref(g), adj(g)
    for a, b in zip(g_got, g_ref, strict=True):  # sums of many terms: cancellation
        _close(a, b)
    lhs = float(np.dot(got.ravel().astype(np.float64), g.ravel()))
    rhs = sum(
        float(np.dot(x.ravel().astype(np.float64), y.ravel()))
        for x, y in zip(xs, g_got, strict=True)
    )
    assert rhs == pytest.approx(lhs, rel=1e-5, abs=1e-5 * float(np.abs(g).sum()))


@pytest.mark.parametrize("backend", ["numba", *(["c"] if tk._train_native else [])])
def test_encoded_bytes_do_not_depend_on_threads(backend, monkeypatch):
    """Same image, options and seed: the same bytes on 1 and 2 threads (numba's, torch's and
    the C kernels' pool), issue 15 point 4."""
    import numba

    from neural_memory.lossy.decoding.bitstream import ArchConfig
    from neural_memory.lossy.encoding.encoder import fit
    from neural_memory.lossy.encoding.presets import grids
    from neural_memory.lossy.encoding.train import TrainConfig

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba has a single thread here")
    monkeypatch.setattr(tk, "BACKEND", backend)
    # an image and length at which one vs two reduction parts (the old one-part-per-thread
    # split) gave different bytes: 628 vs 632 B
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:40, 0:72]
    img = np.stack([96 + 60 * np.sin(xx / 7.0), 128 + 50 * np.cos(yy / 5.0), (xx + yy) * 2.0], -1)
    img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
    # the presets' wide networks too: SOAP's 48 x 48 statistics were multiplied in another
    # order on 2 threads (whole kodim23: another file after 300 steps)
    # and the rate on every latent (presets.rate_stride from lambda 2e-3); both filter tables
    # (the presets' is 1, payload version 3), and version 4's pre-concatenation filters,
    # whose taps' gradient is a sum over every latent (prefilter.py)
    narrow = ArchConfig(grids(3), 16, (24,), 3)
    wide = ArchConfig(grids(3), 24, (48,), 3, up_table=1)
    filtered = ArchConfig(grids(3), 24, (48,), 3, up_table=1, prefilter=True)
    runs = [(narrow, 2), (wide, 2), (wide, 1), (filtered, 1)]
    old = numba.get_num_threads(), torch.get_num_threads()
    payloads: dict[int, list[bytes]] = {1: [], 2: []}
    try:
        for n in (1, 2):
            numba.set_num_threads(n)
            torch.set_num_threads(n)
            assert tk.threads() == n
            for arch, stride in runs:
                tcfg = TrainConfig(steps=120, rate_stride=stride)
                payloads[n].append(fit(img, arch, tcfg, lmbda=1e-3, seed=0))
    finally:
        numba.set_num_threads(old[0])
        torch.set_num_threads(old[1])
    assert payloads[1] == payloads[2]


def test_gram_matrices_do_not_depend_on_threads():
    """The quantisation's Gram matrices (step search, refit, feedback rounding) sum the same
    way on 1 and 2 torch threads: a multi-threaded BLAS split their 300,000-long inner
    dimension between threads and changed the last bits (issue 15 point 4)."""
    from neural_memory.lossy.encoding.quantize import input_gram
    from neural_memory.torch_threads import torch_threads

    x = torch.randn(300_000, 49, generator=torch.Generator().manual_seed(3))
    grams = []
    for n in (1, 2):
        with torch_threads(n):
            grams.append(input_gram(x))
    assert np.array_equal(grams[0], grams[1])
