"""Prototype (session 16, issue 15): per-stage upsampling filters, learned with the rest of
the model or fixed to other taps than the decoder's bicubic ones, measured at equal steps.

Not part of the codec: it replaces the filter table of payload version 3 (``--mode fixed``)
or makes the taps trainable (``--mode learn``) in this process only, through the codec's own
per-stage upsampler (``ArchConfig.up_table``, CodecModel's operators). Each run trains the
`default` preset's model of one development image (scripts/time_to_quality.py's set, whole
images) at one lambda, then prints and appends to ``--out`` the PSNR of the float networks on
the rounded latents and the latents' bytes (the ARM's estimate on all positions, after its
fine-tune), the figures a file's size and quality follow. In the variants the distortion runs
through autograd and this process's patched operators (the C kernels know only the codec's
tables; the rate and the updates stay in them); ``--mode base`` runs the default preset's
fused step through the same measurement: bicubic in session 16's records, the version-3
table since session 17's presets, so new variants need new base records. ``--taps`` with
``--mode learn`` starts the learned taps from that table instead of bicubic; ``--mode
prefilter`` trains the codec's own pre-concatenation filters (ArchConfig.prefilter, payload
version 4 since session 18; their four free values per level x256 in the record's ``taps``)
and ``--mode base`` runs without them. (The prefilter records of session 18,
docs/bench/ttq/prefilter-s18.jsonl, came from this script at 81566a8, which built the same
filters by hand through autograd, when base meant the presets' version 3.)
(The records of session 16 came from this script's first version, at 4761859, which built the
same operators by hand.)

    NM_DATA=../shared/data PYTHONPATH=src:scripts python docs/experiments/learned_upsampler.py \
        kodak/kodim23 --lmbda 3e-3 --steps 1825 --mode learn     # and --mode base
    ... --mode fixed --taps '[[-29, 88, 227, -30], [-15, 80, 200, -9], ...]'
    # each variant against the base run of its (image, lambda), as % of rate at equal PSNR
    PYTHONPATH=src:scripts python docs/experiments/learned_upsampler.py --report upsampler.jsonl

Per stage s (level s + 1 -> level s, rows and columns alike) the even outputs read sources
k-2..k+1 with taps t, the odd ones k-1..k+2 with t reversed, indices clamped at the border:
the decoder's filter with TAPS_EVEN / TAPS_ODD, four free values per stage instead of none.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import gzip
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from time_to_quality import FULL_CROP, dev_image
from torch import nn
from torch.nn import functional as F

from neural_memory.lossy.decoding.fixed_point import stage_taps
from neural_memory.lossy.encoding import encoder
from neural_memory.lossy.encoding import model as model_module
from neural_memory.lossy.encoding.model import CodecModel
from neural_memory.lossy.encoding.train import finetune_arm, train


def use_table(taps: np.ndarray) -> None:
    """Build every model of this process with the per-stage even taps ``taps`` (x256) as its
    filter table (what ArchConfig.up_table selects from fixed_point.UP_TABLES)."""
    model_module.stage_taps = lambda table: taps


def distortion_through_autograd(model: CodecModel) -> None:
    """Run the model's distortion through its own (patched) operators: the C kernels'
    upsampler has the codec's tables built in, not this process's."""
    model._squared_error_fused = functools.partial(CodecModel._squared_error_autograd, model)


def _up_axis(x: torch.Tensor, kernel: torch.Tensor, n_out: int, axis: int) -> torch.Tensor:
    """2x along ``axis`` (1 or 2) of (c, h, w) with a filter of any even length T: even
    output 2k reads sources k - T/2 .. k + T/2 - 1, odd 2k + 1 one further, the taps
    reversed; replicated border (CodecModel._up_rows / _up_cols for T = 4)."""
    pad = kernel.shape[2 + (axis == 2)] // 2
    n = x.shape[axis]
    spec = (0, 0, pad, pad) if axis == 1 else (pad, pad, 0, 0)
    o = F.conv2d(F.pad(x[None], spec, mode="replicate")[0][:, None], kernel)  # (c, 2, ...)
    if axis == 1:
        y = torch.stack([o[:, 0, :n], o[:, 1, 1 : n + 1]], dim=2).reshape(x.shape[0], 2 * n, -1)
        return y[:, :n_out]
    y = torch.stack([o[:, 0, :, :n], o[:, 1, :, 1 : n + 1]], dim=3).reshape(*x.shape[:2], 2 * n)
    return y[:, :, :n_out]


def learn_taps(model: CodecModel, n_taps: int = 4) -> nn.Parameter:
    """Make the model's per-stage taps a parameter, started from its table (widened to
    ``n_taps`` with zeros on both sides): each upsampling rebuilds the operators from it, so
    the distortion's gradient reaches the taps."""
    used = model.n_levels - 1  # the stages the model's levels use
    side = (n_taps - 4) // 2
    table = F.pad(model.k_rows[:, 0, 0, :, 0], (side, side))
    taps = nn.Parameter(table[:used].clone())
    rest = table[used:]
    model._up_rows = lambda x, n_out, stage: _up_axis(x, model.k_rows[stage], n_out, 1)
    model._up_cols = lambda x, n_out, stage: _up_axis(x, model.k_cols[stage], n_out, 2)

    def upsample(ys: list[torch.Tensor], rows: torch.Tensor | None = None) -> torch.Tensor:
        even = torch.cat([taps, rest])
        both = torch.stack([even, even.flip(1)], dim=1)  # (stages, 2, T)
        model.k_rows = both.reshape(-1, 2, 1, n_taps, 1)
        model.k_cols = both.reshape(-1, 2, 1, 1, n_taps)
        model._axis_matrices()
        return CodecModel.upsample(model, ys, rows)

    model.upsample = upsample
    return taps


def anchor_slopes() -> dict[str, list[tuple[float, float]]]:
    """AVIF s1's (PSNR, ln bytes) points per image: the instrument's records (development
    set) and the Kodak benchmark's (the other Kodak images)."""
    root = Path(__file__).resolve().parents[2]
    points: dict[str, set[tuple[float, float]]] = {}
    for line in (root / "docs/bench/ttq/full.jsonl").open():
        r = json.loads(line)
        if r["label"] == "anchor:avif-444-psnr-s1":
            for p in r["points"]:
                points.setdefault(r["image"], set()).add((p["psnr"], math.log(p["bytes"])))
    with gzip.open(root / "docs/bench/kodak/results.jsonl.gz", "rt") as f:
        for line in f:
            r = json.loads(line)
            if r["codec"] == "avif-444-psnr-s1" and r.get("status") == "ok":
                name = "kodak/" + r["image"].removesuffix(".png")
                points.setdefault(name, set()).add((r["psnr"], math.log(r["bytes"])))
    return {k: sorted(v) for k, v in points.items()}


def report(path: str, network_bytes: float = 1400.0) -> None:
    """Each variant's change against the base run of its (image, lambda), as a change of
    rate at equal PSNR: the latents' bytes over a file of those plus ``network_bytes``
    (networks and header, about 1.4 kB at the default's widths), minus the PSNR gain at
    AVIF s1's slope (d ln bytes / d PSNR) where the base sits."""
    recs = [json.loads(line) for line in Path(path).read_text().splitlines()]
    base = {(r["image"], r["lmbda"]): r for r in recs if r["mode"] == "base"}
    anchors = anchor_slopes()
    for r in recs:
        b = base.get((r["image"], r["lmbda"]))
        if r["mode"] == "base" or b is None:
            continue
        ps, lb = np.array(anchors[r["image"]]).T
        slope = np.interp(b["psnr"], (ps[1:] + ps[:-1]) / 2, np.diff(lb) / np.diff(ps))
        d_psnr = r["psnr"] - b["psnr"]
        d_bytes = r["latent_bytes"] - b["latent_bytes"]
        change = (d_bytes / (b["latent_bytes"] + network_bytes) - d_psnr * slope) * 100
        print(
            f"{r['image']:45s} {r['lmbda']:<7} {r['mode']:6s} {d_psnr:+.3f} dB "
            f"{d_bytes:+7.1f} B (slope {slope * 100:.1f} %/dB): {change:+.1f} % rate"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("image", nargs="?", help="a development image, e.g. kodak/kodim23")
    ap.add_argument("--lmbda", type=float)
    ap.add_argument("--steps", type=int)
    ap.add_argument("--report", metavar="FILE", help="compare the records of FILE and stop")
    ap.add_argument("--mode", choices=("base", "learn", "fixed", "prefilter"), default="learn")
    ap.add_argument(
        "--taps",
        help="JSON list of per-stage even taps (x256): --mode fixed's "
        "filters, --mode learn's start (default bicubic)",
    )
    ap.add_argument("--n-taps", type=int, default=4, help="--mode learn: taps per filter")
    ap.add_argument("--out", default="upsampler.jsonl")
    a = ap.parse_args()
    if a.report:
        report(a.report)
        return
    if a.image is None or a.lmbda is None or a.steps is None:
        ap.error("an image, --lmbda and --steps are needed (or --report FILE)")
    img = dev_image(a.image, FULL_CROP)
    arch, tcfg = encoder.image_preset("default", img, a.lmbda, a.steps)
    patched = a.mode in ("learn", "fixed")
    if patched:  # a table other than the codec's: the distortion runs through autograd
        arch = dataclasses.replace(arch, up_table=1)
        use_table(np.array(json.loads(a.taps)) if a.taps else stage_taps(0))
    arch = dataclasses.replace(arch, prefilter=a.mode == "prefilter")
    torch.manual_seed(0)
    model, target = encoder._start_model(img, arch, tcfg, a.lmbda, None, "cpu")
    if patched:
        distortion_through_autograd(model)
    learned = model.prefilter  # --mode prefilter: the codec's own (ArchConfig.prefilter)
    if a.mode == "learn":
        learned = learn_taps(model, a.n_taps)
        params = [*model.syn.parameters(), learned]  # trained with the synthesis
        model.syn.parameters = lambda recurse=True: iter(params)
    t0 = time.time()
    train(model, target, a.lmbda, tcfg, seed=0)
    seconds = time.time() - t0
    ys = [torch.round(y.detach()) for y in model.latents]
    finetune_arm(model, ys, tcfg.arm_finetune_steps, seed=0)
    with torch.no_grad():
        model.use_kernels = False
        feat = model.upsample(ys, None)
        pred = (model.synth(feat.reshape(feat.shape[0], -1)).clamp(0, 1) * 255).round()
        mse = float(((pred - target * 255) ** 2).mean())
        bits = float(model.rate_bits(ys, 1))
    taps = learned.detach().mul(256).round().tolist() if a.mode in ("learn", "prefilter") else None
    psnr = 10 * math.log10(255**2 / mse)
    start = json.loads(a.taps) if a.taps and a.mode == "learn" else None
    rec = dict(image=a.image, lmbda=a.lmbda, steps=a.steps, mode=a.mode, taps=taps, psnr=psnr,
               latent_bytes=bits / 8, seconds=seconds, start=start, n_taps=a.n_taps)  # fmt: skip
    print(json.dumps(rec))
    with open(a.out, "a") as f:
        f.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
