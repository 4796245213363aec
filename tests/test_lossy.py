"""Lossy engine: roundtrip sanity, robustness, portability and a golden vector."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neural_memory.errors import FormatError, OptionError
from neural_memory.lossy.decoding.decoder import decode_lossy
from neural_memory.options import EncodeOptions

GOLDEN = Path(__file__).parent / "golden" / "lossy_kodim23_32x32.bin"
GOLDEN_SHAPE = (32, 32, 3)
GOLDEN_SHA256 = "27581a2be9bb97383144c4752cf2c397c62c41bba322b923a5a6260712bd8ed0"
SRC = Path(__file__).resolve().parents[1] / "src"


def _test_image(h: int = 24, w: int = 28, c: int = 3) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([(xx * 9) % 256, (yy * 7 + xx * 3) % 256, 128 + 60 * np.sin(xx / 3.0)], -1)
    return img[..., :c].astype(np.uint8)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    return 10 * np.log10(255.0**2 / max(mse, 1e-12))


@pytest.fixture(scope="module")
def encoded() -> tuple[np.ndarray, bytes]:
    import torch

    from neural_memory.lossy.decoding.bitstream import ArchConfig
    from neural_memory.lossy.encoding.encoder import fit
    from neural_memory.lossy.encoding.presets import grids
    from neural_memory.lossy.encoding.train import TrainConfig

    torch.set_num_threads(1)
    img = _test_image()
    arch = ArchConfig(grids(3), 8, (20,), 3)
    return img, fit(img, arch, TrainConfig(steps=80), lmbda=1e-3, seed=0)


def test_config_validation():
    with pytest.raises(OptionError, match="at most one of --lambda / lmbda="):
        EncodeOptions(lmbda=1e-3, bpp=0.5)
    with pytest.raises(OptionError, match="--preset / preset="):
        EncodeOptions(preset="turbo")


def test_roundtrip_rgb(encoded):
    img, payload = encoded
    out = decode_lossy(payload, *img.shape)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert _psnr(img, out) > 22
    np.testing.assert_array_equal(out, decode_lossy(payload, *img.shape))


def test_roundtrip_gray_through_api_with_progress():
    from neural_memory.lossy.encoding.encoder import encode_lossy

    seen = []
    img = _test_image(c=1)
    cfg = EncodeOptions(lmbda=1e-3, preset="fast", threads=1)
    payload = encode_lossy(img, cfg, progress=lambda s, n, log: seen.append((s, n, log)))
    out = decode_lossy(payload, *img.shape)
    assert out.shape == img.shape
    assert _psnr(img, out) > 22
    assert seen[-1][0] == seen[-1][1] and {"bpp", "psnr"} <= set(seen[-1][2])


def test_render_other_size(encoded):
    img, payload = encoded
    out = decode_lossy(payload, *img.shape, size=(56, 48))
    assert out.shape == (48, 56, 3)
    small = decode_lossy(payload, *img.shape, size=(14, 12))
    assert small.shape == (12, 14, 3)


def test_truncated_payload_raises(encoded):
    img, payload = encoded
    for n in range(0, len(payload), max(1, len(payload) // 40)):
        with pytest.raises(FormatError):
            decode_lossy(payload[:n], *img.shape)


def test_corrupted_payload_never_crashes(encoded):
    img, payload = encoded
    rng = np.random.default_rng(0)
    for _ in range(30):
        bad = bytearray(payload)
        for i in rng.integers(0, len(bad), 3):
            bad[i] ^= int(rng.integers(1, 256))
        try:
            out = decode_lossy(bytes(bad), *img.shape)
            assert out.shape == img.shape
        except FormatError:
            pass


def test_decoder_does_not_import_torch():
    code = (
        "import sys, numpy as np\n"
        "from neural_memory.lossy.decoding.decoder import decode_lossy\n"
        f"p = open({str(GOLDEN)!r}, 'rb').read()\n"
        f"decode_lossy(p, *{GOLDEN_SHAPE})\n"
        "assert 'torch' not in sys.modules, 'decoder imported torch'\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_golden_vector():
    out = decode_lossy(GOLDEN.read_bytes(), *GOLDEN_SHAPE)
    assert hashlib.sha256(out.tobytes()).hexdigest() == GOLDEN_SHA256


def test_target_bpp_runs():
    from neural_memory.lossy.encoding.encoder import encode_lossy

    img = _test_image(16, 16)
    payload = encode_lossy(img, EncodeOptions(bpp=4.0, preset="fast", threads=1))
    out = decode_lossy(payload, *img.shape)
    assert out.shape == img.shape


def test_parent_grids_and_coding_order():
    from neural_memory.lossy.decoding.arm import coding_order, component_index, parent_grids

    # YUV-style pyramid: level 0 has 3 grids (Y, U, V), levels 1-2 luma only
    levels = (0, 0, 0, 1, 2)
    assert component_index(levels) == [0, 1, 2, 0, 0]
    assert parent_grids(levels) == [3, -1, -1, 4, -1]
    order = coding_order(levels)
    assert order == [4, 3, 0, 1, 2]
    for g, p in enumerate(parent_grids(levels)):
        if p >= 0:
            assert order.index(p) < order.index(g), "a parent must be coded before its child"


def test_float_contexts_match_integer_arm_layout():
    """The trained (float) ARM must see exactly the inputs the integer ARM reads."""
    import torch

    from neural_memory.lossy.decoding.arm import CTX_OFFSETS, N_CTX, N_SPATIAL, PAD, PARENT_OFFSETS
    from neural_memory.lossy.decoding.bitstream import ArchConfig
    from neural_memory.lossy.encoding.model import CodecModel
    from neural_memory.lossy.encoding.presets import grids

    arch = ArchConfig(grids(1), 4, (8,), 1)
    model = CodecModel(12, 10, arch)
    rng = np.random.default_rng(0)
    ys = [
        torch.from_numpy(rng.integers(-5, 6, tuple(y.shape)).astype(np.float32))
        for y in model.latents
    ]
    g = next(i for i, p in enumerate(model.parents) if p >= 0)
    y, par = ys[g].numpy(), ys[model.parents[g]].numpy()
    h, w = y.shape
    ctx, vals = model.contexts(ys, g)
    assert ctx.shape == (h * w, N_CTX)
    np.testing.assert_array_equal(vals.numpy(), y.reshape(-1))
    padded = np.pad(y, ((PAD, 0), (PAD, PAD)))
    for i in range(h * w):
        r, c = divmod(i, w)
        want = [padded[PAD + r + dy, PAD + c + dx] for dy, dx in CTX_OFFSETS]
        hp, wp = par.shape
        want += [
            par[min(max((r >> 1) + dy, 0), hp - 1), min(max((c >> 1) + dx, 0), wp - 1)]
            for dy, dx in PARENT_OFFSETS
        ]
        np.testing.assert_array_equal(ctx[i], want)
    # a lattice phase picks exactly those rows of the full context table
    full = ctx.numpy().reshape(h, w, N_CTX)
    for phase in ((0, 0), (1, 0), (0, 1), (1, 1)):
        sub, v = model.contexts(ys, g, 2, phase)
        want = full[phase[0] :: 2, phase[1] :: 2].reshape(-1, N_CTX)
        np.testing.assert_array_equal(sub.numpy(), want)
        np.testing.assert_array_equal(v.numpy(), y[phase[0] :: 2, phase[1] :: 2].reshape(-1))
    assert N_SPATIAL < N_CTX


@pytest.mark.parametrize("subset", [False, True])
def test_blockwise_distortion_matches_whole_image(subset):
    """Training and the weight search evaluate the distortion in row blocks to bound memory;
    the sum and every gradient must equal those of the whole image at once."""
    import torch

    from neural_memory.lossy.decoding.bitstream import ArchConfig
    from neural_memory.lossy.encoding.model import CodecModel
    from neural_memory.lossy.encoding.presets import grids

    torch.manual_seed(0)
    h, w = 21, 26
    model = CodecModel(h, w, ArchConfig(grids(3), 8, (12,), 3))
    target = torch.rand(3, h, w)
    rows = torch.tensor([0, 3, 4, 9, 15, 20]) if subset else None
    results = []
    for chunk in (h * w, 2 * w + 5):  # one block / blocks of two rows
        model.zero_grad()
        leaves = [torch.randn(y.shape, generator=torch.Generator().manual_seed(i)).requires_grad_()
                  for i, y in enumerate(model.latents)]  # fmt: skip
        sse = model.squared_error(leaves, target, rows, chunk_pixels=chunk, backward_scale=0.5)
        grads = [leaf.grad.clone() for leaf in leaves] + [
            p.grad.clone() for p in model.syn.parameters()
        ]
        results.append((sse, grads))
    (sse1, g1), (sse2, g2) = results
    assert sse1 == pytest.approx(sse2, rel=1e-5)
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_arm_prior_ships_and_fits_the_presets():
    """A shipped ARM prior must load into the ARM of every preset (grey and colour), and
    starting from it must change nothing in the bitstream format."""
    pytest.importorskip("torch")
    from neural_memory.lossy.encoding.arm_prior import (
        PRIOR_PATH,
        arm_vector,
        load_arm_prior,
        prior_path,
        shipped_widths,
    )
    from neural_memory.lossy.encoding.model import CodecModel
    from neural_memory.lossy.encoding.presets import preset

    assert PRIOR_PATH.is_file()
    for channels in (1, 3):
        for pixels in (64 * 64, 768 * 512):
            arch, tcfg = preset("default", channels, pixels, 1e-3)
            assert tcfg.arm_prior
            model = CodecModel(8, 8, arch)
            assert load_arm_prior(model.arm)
            if arch.arm_hidden in shipped_widths():
                vec = np.load(prior_path(arch.arm_hidden))
                np.testing.assert_array_equal(arm_vector(model.arm), vec)


def test_image_preset_narrows_the_synthesis_of_a_cheap_image():
    """A large image whose analytic start costs few bits (smooth) gets the narrow synthesis,
    a busy one the wide; a small image is narrow without an estimate; the estimate is the
    same on 1 and 2 threads (an image at the threshold must not change width with them) and
    leaves torch's random stream where it was."""
    torch = pytest.importorskip("torch")
    from neural_memory.lossy.encoding.encoder import image_preset, start_bits
    from neural_memory.lossy.encoding.presets import (
        NARROW_SYN_BELOW_START_BITS,
        SYN_HIDDEN,
        WIDE_FROM_PIXELS,
        preset,
    )
    from neural_memory.torch_threads import torch_threads

    side = 400
    assert side * side >= WIDE_FROM_PIXELS
    ramp = np.linspace(0, 255, side, dtype=np.float32)
    smooth = np.repeat(np.add.outer(ramp, ramp)[:, :, None] / 2, 3, axis=2).astype(np.uint8)
    busy = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    arch, tcfg = preset("default", 3, side * side, 1e-2)
    torch.manual_seed(5)
    untouched = torch.rand(1)
    torch.manual_seed(5)
    low = start_bits(smooth, arch, tcfg, 1e-2)
    assert torch.equal(torch.rand(1), untouched)
    for threads in (1, 2):
        with torch_threads(threads):
            assert start_bits(smooth, arch, tcfg, 1e-2) == low
    assert low < NARROW_SYN_BELOW_START_BITS < start_bits(busy, arch, tcfg, 1e-2)
    assert image_preset("default", smooth, 1e-2)[0].syn_hidden == (SYN_HIDDEN[0],)
    assert image_preset("default", busy, 1e-2)[0].syn_hidden == (SYN_HIDDEN[1],)
    assert image_preset("default", busy[:100, :100], 1e-2)[0].syn_hidden == (SYN_HIDDEN[0],)


def test_arm_prior_of_the_arms_width_else_the_widest_narrower_one_embedded(tmp_path, monkeypatch):
    """An ARM starts from the prior of its own width; without one, from the widest narrower
    prior embedded, computing exactly what that prior computes; narrower than every prior, it
    keeps its initialisation."""
    torch = pytest.importorskip("torch")
    from neural_memory.lossy.decoding.arm import N_CTX
    from neural_memory.lossy.encoding import arm_prior
    from neural_memory.lossy.encoding.arm_prior import arm_vector, load_arm_prior, shipped_widths

    def arm(width):
        return torch.nn.ModuleList(
            [
                torch.nn.Linear(N_CTX, width),
                torch.nn.Linear(width, width),
                torch.nn.Linear(width, 2),
            ]
        )

    def run(net, x):
        return net[2](torch.relu(net[1](torch.relu(net[0](x)))))

    torch.manual_seed(4)
    priors = {16: arm(16), 24: arm(24)}
    monkeypatch.setattr(arm_prior, "PRIOR_PATH", tmp_path / "arm_prior.npy")
    np.save(tmp_path / "arm_prior.npy", arm_vector(priors[16]))
    np.save(tmp_path / "arm_prior_24.npy", arm_vector(priors[24]))
    (tmp_path / "arm_prior_notes.npy").write_bytes(b"")  # not a width: ignored
    assert shipped_widths() == [16, 24]
    x = torch.randn(32, N_CTX) * 3
    for width, source in ((16, 16), (20, 16), (24, 24), (32, 24)):
        net = arm(width)
        assert load_arm_prior(net)
        torch.testing.assert_close(run(net, x), run(priors[source], x), rtol=1e-5, atol=1e-5)
    small = arm(8)
    before = arm_vector(small)
    assert not load_arm_prior(small)
    np.testing.assert_array_equal(arm_vector(small), before)


def test_output_layer_refit_recovers_the_generating_layer():
    """The least-squares refit must find the output layer that produced a target exactly
    (blocks of rows included), and never make a trained layer worse."""
    import torch

    from neural_memory.lossy.decoding.bitstream import ArchConfig
    from neural_memory.lossy.encoding.model import CodecModel
    from neural_memory.lossy.encoding.quantize import refit_output_layer

    torch.manual_seed(3)
    model = CodecModel(20, 18, ArchConfig((0, 1, 2), 4, (8,), 3))
    ys = [torch.randn(*s) * 3 for s in model.grid_shapes]
    out = model.syn[-1]
    with torch.no_grad():
        model.syn[0].bias.fill_(0.5)
        truth_w, truth_b = torch.randn_like(out.weight), torch.randn_like(out.bias)
        out.weight.copy_(truth_w)
        out.bias.copy_(truth_b)
        feat = model.upsample(ys)
        target = model.synth(feat.reshape(feat.shape[0], -1)).reshape(3, 20, 18)
        out.weight.mul_(0.5)
        out.bias.zero_()
    before = model.squared_error(ys, target)
    gain = refit_output_layer(model, ys, target, chunk_pixels=18 * 7)  # 3 row blocks
    assert 0.999 < gain <= 1.0
    assert model.squared_error(ys, target) < 1e-6 * before
    assert torch.allclose(out.weight, truth_w, atol=1e-3)
    assert torch.allclose(out.bias, truth_b, atol=1e-3)
    assert refit_output_layer(model, ys, target) == 0.0  # already optimal: kept as it is


def test_rounding_with_feedback_keeps_the_outputs_closer_than_plain_rounding():
    """On correlated inputs, rounding with error feedback must leave a smaller output error
    than rounding each weight to its nearest step, at every step size, and still give
    integers on that step."""
    import torch

    from neural_memory.lossy.encoding.quantize import (
        input_gram,
        quantise_layer,
        round_with_feedback,
    )

    gen = np.random.default_rng(5)
    base = gen.normal(size=(4000, 3))
    x = np.hstack([base, base @ gen.normal(size=(3, 9)) + 0.1 * gen.normal(size=(4000, 9))])
    x += 2.0  # a constant offset, as the synthesis' biased hidden units have
    layer = torch.nn.Linear(12, 5).double()
    gram = input_gram(torch.from_numpy(x))
    x1 = np.hstack([x, np.ones((len(x), 1))])
    exact = x1 @ np.vstack([layer.weight.detach().numpy().T, layer.bias.detach().numpy()])

    def error(m):
        w = np.vstack([m.w, m.b[None]]) / 2.0**m.q
        return float(np.sum((x1 @ w - exact) ** 2))

    for q in (2, 4, 6):
        fed, plain = round_with_feedback(layer, gram, q), quantise_layer(layer, q)
        assert fed.w.dtype == np.int64 and fed.q == q
        assert error(fed) < 0.5 * error(plain)


def test_latent_bits_match_the_symbols_the_coder_writes():
    """The row-parallel bit count must equal the cost of the rANS symbols of the stream."""
    from neural_memory.entropy.rans import PROB_BITS
    from neural_memory.lossy.decoding.bitstream import QuantModule
    from neural_memory.lossy.encoding.quantize import latent_bits, latent_stream

    gen = np.random.default_rng(2)
    grid_levels = (0, 1, 2, 1, 2)
    levels = [
        gen.laplace(0, 2, size=(17 >> lv, 13 >> lv)).round().astype(np.int64) for lv in grid_levels
    ]
    levels[0][0, 0] = 900  # an escape: several symbols for one value
    shapes = [(17, 6), (6, 6), (6, 2)]
    arm = [QuantModule(gen.integers(-20, 20, s), gen.integers(-20, 20, s[1]), 5, 0) for s in shapes]
    _, freqs = latent_stream(levels, arm, grid_levels)
    expected = float(np.sum(PROB_BITS - np.log2(freqs.astype(np.float64))))
    assert latent_bits(levels, arm, grid_levels) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("fused", [True, False])
def test_arm_finetune_lowers_the_bits_of_the_rounded_latents(fused):
    """On integer latents that are mostly 0 an untrained ARM is far from their statistics:
    the ARM-only steps must lower the estimated bits, and a second call, with nothing left to
    gain at this learning rate, must not make them worse."""
    import torch

    from neural_memory.lossy.decoding.bitstream import ArchConfig
    from neural_memory.lossy.encoding.model import CodecModel
    from neural_memory.lossy.encoding.train import finetune_arm

    torch.manual_seed(5)
    model = CodecModel(40, 36, ArchConfig((0, 1, 2), 8, (4,), 1))
    model.use_kernels = fused
    ys = [torch.round(torch.randn(*s) * 0.6) for s in model.grid_shapes]

    def bits() -> float:
        with torch.no_grad():
            return float(model.rate_bits(ys, 1))

    before = bits()
    gain = finetune_arm(model, ys, steps=60, lr=1e-2)
    assert gain > 0.05
    assert bits() == pytest.approx(before * (1 - gain), rel=1e-4)
    mid = bits()
    finetune_arm(model, ys, steps=5, lr=1e-2)
    assert bits() <= mid * (1 + 1e-6)


@pytest.mark.parametrize("ratio", [2.0, 1.8])
def test_analytic_start_reconstructs_the_image_at_any_level_step_ratio(ratio):
    """The analytic start (float, before rounding) decodes to the image itself whatever the
    ratio of the levels' quantisation steps: each latent's unit is rescaled in the synthesis
    by what it is in the image. The steps follow the ratio (a level-6 latent is ratio**6 / 2**6
    as coarse as at ratio 2), and start_bits does not depend on the training's ratio."""
    torch = pytest.importorskip("torch")
    import dataclasses

    from neural_memory.lossy.decoding.bitstream import ArchConfig
    from neural_memory.lossy.encoding.analytic_init import pyramid_init
    from neural_memory.lossy.encoding.encoder import start_bits
    from neural_memory.lossy.encoding.model import CodecModel
    from neural_memory.lossy.encoding.presets import preset

    gen = torch.Generator().manual_seed(3)
    image = torch.rand(1, 45, 70, generator=gen)
    arch = ArchConfig((0, 1, 2, 3, 4, 5, 6), 16, (24,), 1)
    torch.manual_seed(0)
    model = CodecModel(45, 70, arch)
    model.use_kernels = False
    pyramid_init(model, image, 0.1, ratio)
    with torch.no_grad():
        feat = model.upsample(list(model.latents))
        out = model.synth(feat.reshape(feat.shape[0], -1)).reshape(1, 45, 70)
    torch.testing.assert_close(out, image, atol=2e-5, rtol=0)
    ref = CodecModel(45, 70, arch)
    pyramid_init(ref, image, 0.1, 2.0)
    coarse = float(ref.latents[6].detach().abs().max() / model.latents[6].detach().abs().max())
    assert coarse == pytest.approx((2.0 / ratio) ** 6, rel=1e-4)
    img = (np.random.default_rng(1).random((40, 48, 3)) * 255).astype(np.uint8)
    arch3, tcfg = preset("default", 3, 40 * 48, 1e-3)
    other = dataclasses.replace(tcfg, level_step_ratio=ratio)
    assert start_bits(img, arch3, other, 1e-3) == start_bits(img, arch3, tcfg, 1e-3)


@pytest.mark.parametrize("table", [0, 1])
def test_float_upsampler_follows_the_decoders_filter_table(table):
    """The model's float upsampler (training) applies the filter table its payload version
    names, as the integer decoder does (up to the decoder's rounding at each step), and the
    analytic start built with that table still reconstructs the image."""
    torch = pytest.importorskip("torch")

    from neural_memory.lossy.decoding.bitstream import ArchConfig
    from neural_memory.lossy.decoding.fixed_point import UP_BITS, upsample_grids
    from neural_memory.lossy.encoding.analytic_init import pyramid_init
    from neural_memory.lossy.encoding.model import CodecModel

    arch = ArchConfig((0, 1, 2, 3, 4, 5), 16, (24,), 1, table)
    model = CodecModel(37, 29, arch)
    model.use_kernels = False
    rng = np.random.default_rng(table)
    grids = [rng.integers(-40, 41, s) for s in model.grid_shapes]
    with torch.no_grad():
        ref = model.upsample([torch.tensor(g, dtype=torch.float32) for g in grids]).numpy()
    got = upsample_grids(grids, arch.grid_levels, 37, 29, table) / 2.0**UP_BITS
    np.testing.assert_allclose(got, ref, atol=0.02)
    other = upsample_grids(grids, arch.grid_levels, 37, 29, 1 - table) / 2.0**UP_BITS
    assert np.abs(other - ref).max() > 0.5  # the tables differ: the test can tell them apart
    image = torch.rand(1, 37, 29, generator=torch.Generator().manual_seed(5))
    pyramid_init(model, image, 0.1, 1.8)
    with torch.no_grad():
        feat = model.upsample(list(model.latents))
        out = model.synth(feat.reshape(feat.shape[0], -1)).reshape(1, 37, 29)
    torch.testing.assert_close(out, image, atol=2e-5, rtol=0)
