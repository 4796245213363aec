"""Benchmark of the lossy encoder's training kernels on one image: the synthesis kernel
(synth_sse) and the rate kernel (arm_rate) in numba and in C, on 1 and 2 threads, a whole
training step with each, and the sgemm ceiling (torch.mm 2048^3) measured in the same run.

    PYTHONPATH=src python scripts/bench_train_kernels.py            # kodim23, 768 x 512
    PYTHONPATH=src python scripts/bench_train_kernels.py --repeat 9 --steps 30

Times are the minimum wall time over repeats, with the CPU time of that run beside it (the
machine is shared: compare ratios within one run, and the CPU times of 1-thread runs).
A step is train() with --steps steps on all rows divided by the steps (proxies, distortion
and rate with their gradients, the optimiser), best of 3, inside retained_heap() as the
encoder runs it.
GFLOP counts are of the arithmetic the kernels do (multiply-add = 2 FLOP): synthesis
6 G H + 6 H C per pixel (forward, both weight gradients, the hidden and feature gradients),
ARM 6 N_CTX A + 6 A^2 + 12 A per coded position; the step adds the upsampler's taps
(8 FLOP per output sample of each 1-D pass, forward and adjoint), counted by wrapping the
numba upsampler's functions in a step run with the numba kernels. Element-wise work
(proxies, Laplace terms, Adam) is not counted as FLOP.

"c, numba up" is the step as it was before the upsampler moved to C (C synthesis and rate
kernels, the numba upsampler and a stored feature array), timed alternately with the "c"
step in the same rounds. Torch's OpenMP workers wait passively, as in the encoder
(encoder.py sets OMP_WAIT_POLICY=PASSIVE unless the user chose).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported

import numba
import numpy as np
import torch
from PIL import Image
from shared_data import KODAK

from neural_memory.lossy.decoding.arm import CTX_OFFSETS, PARENT_OFFSETS
from neural_memory.lossy.decoding.bitstream import ArchConfig
from neural_memory.lossy.encoding import train_kernels as tk
from neural_memory.lossy.encoding.heap import retained_heap
from neural_memory.lossy.encoding.model import LOGB_MAX, LOGB_MIN, CodecModel, lattice_phases
from neural_memory.lossy.encoding.presets import DEFAULT_LMBDA, grids, widths
from neural_memory.lossy.encoding.train import TrainConfig, train

BACKENDS = ("numba", "c-avx2", "c")  # c: the best ISA of this CPU (AVX-512 here)


def timed(fn, repeat: int) -> float:
    """Minimum wall time of ``fn()`` over ``repeat`` runs (after one warm-up run); the CPU
    time of the fastest run goes into ``timed.cpu`` (equal to the wall time on an idle
    machine with one thread; larger wall times mean other processes took the CPU)."""
    fn()  # warm-up (JIT, caches, pool)
    best, timed.cpu = float("inf"), float("inf")
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if wall < best:
            best, timed.cpu = wall, cpu
    return best


def set_threads(n: int) -> None:
    numba.set_num_threads(n)
    torch.set_num_threads(n)


def sgemm(n_threads: int, repeat: int) -> tuple[float, float]:
    """GFLOP/s of torch.mm 2048^3: per wall second, and per CPU second (all threads)."""
    set_threads(n_threads)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    t = timed(lambda: torch.mm(a, b), repeat)
    return 2 * 2048**3 / t / 1e9, 2 * 2048**3 / timed.cpu / 1e9


def some_steps(model: CodecModel, target: torch.Tensor, steps: int) -> None:
    """``steps`` training steps on all rows, as train() runs them: proxies (with noise for
    the first ones), distortion and rate kernels with their gradients, the optimiser."""
    train(model, target.reshape(3, -1), 1e-3, TrainConfig(steps=steps, row_frac_until=0.0))


def make_model(h: int, w: int, arm_hidden: int, syn_hidden: int) -> CodecModel:
    torch.manual_seed(0)
    model = CodecModel(h, w, ArchConfig(grids(3), arm_hidden, (syn_hidden,), 3))
    with torch.no_grad():
        for y in model.latents:
            y.normal_(0, 2.0)
        for p in [*model.syn.parameters(), *model.arm.parameters()]:
            p.normal_(0, 0.2)
    return model


def _unfused_rows(
    up, coarse, grids, rows, target, w1, b1, w2, b2, scale, g_coarse, g_grids, backend=None
):
    """train_kernels.synth_sse_rows as it was before the C upsampler: the numba row pass
    into a stored feature array, the synthesis kernel on it, the numba adjoint."""
    feat = up.rows(coarse, grids, rows, "numba")
    g_feat = np.empty_like(feat) if g_grids is not None else None
    sse, grads = tk.synth_sse(
        feat.reshape(feat.shape[0], -1), target, w1, b1, w2, b2, scale,
        None if g_feat is None else g_feat.reshape(feat.shape[0], -1), backend,
    )  # fmt: skip
    if g_feat is not None:
        up.rows_adjoint(g_feat, rows, g_coarse, g_grids, "numba")
    return sse, grads


def c_vs_numba_up(
    h: int, w: int, target: torch.Tensor, steps: int, rounds: int, arch_widths: tuple[int, int]
) -> dict:
    """Step times (best of ``rounds``, alternating) of the C kernels with the C upsampler
    and with the numba one (the step before it moved to C)."""
    cap, rows_fn, backend = tk._up_cap, tk.synth_sse_rows, tk.BACKEND
    variants = {
        "c": (cap, rows_fn),
        "numba_up": (lambda b: None, _unfused_rows),
    }
    best = {k: (float("inf"), 0.0) for k in variants}
    models = {k: make_model(h, w, *arch_widths) for k in variants}
    try:
        tk.BACKEND = "c"
        with retained_heap():
            for r in range(rounds + 1):  # round 0: warm-up
                for k, (c, fn) in variants.items():
                    tk._up_cap, tk.synth_sse_rows = c, fn
                    t0, c0 = time.perf_counter(), time.process_time()
                    some_steps(models[k], target, steps)
                    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                    if r and wall < best[k][0]:
                        best[k] = (wall, cpu)
    finally:
        tk._up_cap, tk.synth_sse_rows, tk.BACKEND = cap, rows_fn, backend
    out = {}
    for k, (wall, cpu) in best.items():
        out[f"{k}_ms"], out[f"{k}_cpu_ms"] = wall / steps * 1e3, cpu / steps * 1e3
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--image", default=str(KODAK / "kodim23.png"))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--steps", type=int, default=10, help="steps per timed training run")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--json", help="append the figures to this JSON-lines file")
    ap.add_argument("--arm-hidden", type=int, help="default: the presets' for the image")
    ap.add_argument("--syn-hidden", type=int, help="default: the presets' for the image")
    args = ap.parse_args()
    img = np.asarray(Image.open(args.image).convert("RGB"), np.float32) / 255.0
    h, w = img.shape[:2]
    target = torch.from_numpy(img.transpose(2, 0, 1).copy())
    syn_default, arm_default = widths(h * w, DEFAULT_LMBDA)
    widths_hw = (args.arm_hidden or arm_default, args.syn_hidden or syn_default)
    model = make_model(h, w, *widths_hw)
    ys = [y.detach().numpy() for y in model.latents]

    # synthesis inputs: the features of all rows
    up = tk.Upsampler(model.arch.grid_levels, h, w)
    feat = up.rows(up.coarse(ys), ys, np.arange(h)).reshape(len(ys), -1)
    l1, l2 = model.syn
    w1 = l1.weight.detach().numpy()[:, up.order].copy()
    b1, w2, b2 = (t.detach().numpy() for t in (l1.bias, l2.weight, l2.bias))
    tgt = target.numpy().reshape(3, -1)
    g_feat = np.empty_like(feat)
    g_n, n = feat.shape
    h_n, c_n = w1.shape[0], w2.shape[0]
    synth_gflop = n * (6 * g_n * h_n + 6 * h_n * c_n) / 1e9

    # rate inputs: the stride-2 lattice of training, one phase per grid
    strides, phases = lattice_phases(model.latents, 2, torch.Generator().manual_seed(0))
    layers = [(m.weight.detach().numpy(), m.bias.detach().numpy()) for m in model.arm]
    a_n, n_ctx = layers[0][0].shape
    positions = sum(
        len(range(py, y.shape[0], s)) * len(range(px, y.shape[1], s))
        for y, s, (py, px) in zip(ys, strides, phases, strict=True)
    )
    arm_gflop = positions * (6 * n_ctx * a_n + 6 * a_n * a_n + 12 * a_n) / 1e9

    def run_synth(backend):
        return lambda: tk.synth_sse(feat, tgt, w1, b1, w2, b2, 1e-6, g_feat, backend=backend)

    def run_arm(backend):
        return lambda: tk.arm_rate(
            ys, list(model.parents), strides, phases, layers, (LOGB_MIN, LOGB_MAX), 1e-6,
            CTX_OFFSETS, PARENT_OFFSETS, backend=backend,
        )  # fmt: skip

    # the FLOP of a whole (all rows) training step, upsampler included
    counted = {"up": 0}
    wrapped = {}
    for name in ("up_cols", "up_rows", "up_cols_adjoint", "up_rows_adjoint"):
        fn = getattr(tk, name)
        wrapped[name] = fn

        def counting(*a, _fn=fn, _name=name):
            out = _fn(*a)
            if _name == "up_rows":
                counted["up"] += 8 * a[0].shape[0] * a[1].shape[0] * a[0].shape[2]
            elif _name == "up_rows_adjoint":
                counted["up"] += 8 * a[0].size
            else:
                counted["up"] += 8 * (out.size if _name == "up_cols" else a[0].size)
            return out

        setattr(tk, name, counting)
    cfg = TrainConfig(steps=1, row_frac_until=0.0)
    tk_backend, tk.BACKEND = tk.BACKEND, "numba"  # the C upsampler does not call them
    train(make_model(h, w, *widths_hw), target.reshape(3, -1), 1e-3, cfg)
    tk.BACKEND = tk_backend
    for name, fn in wrapped.items():
        setattr(tk, name, fn)
    step_gflop = synth_gflop + arm_gflop + counted["up"] / 1e9

    res = {
        "image": Path(args.image).stem,
        "size": [h, w],
        "cpu_simd": tk._train_native.simd() if tk._train_native else None,
        "gflop": {"synth": synth_gflop, "arm": arm_gflop, "step": step_gflop},
        "arm_positions": positions,
    }
    for n_thr in (int(t) for t in args.threads.split(",")):
        res[f"sgemm_gflops_{n_thr}t"], res[f"sgemm_gflops_per_cpu_s_{n_thr}t"] = sgemm(
            n_thr, args.repeat
        )
        for be in BACKENDS:
            set_threads(n_thr)
            ts = timed(run_synth(be), args.repeat)
            ts_cpu = timed.cpu
            ta = timed(run_arm(be), args.repeat)
            ta_cpu = timed.cpu
            tk_backend, tk.BACKEND = tk.BACKEND, be
            m = make_model(h, w, *widths_hw)
            with retained_heap():  # as the encoder trains (see heap.py)
                train(m, target.reshape(3, -1), 1e-3, TrainConfig(steps=2, row_frac_until=0.0))
                tstep = timed(lambda m=m: some_steps(m, target, args.steps), 3) / args.steps
                tstep_cpu = timed.cpu / args.steps
            tk.BACKEND = tk_backend
            res[f"{be}_{n_thr}t"] = {
                "synth_ms": ts * 1e3,
                "synth_cpu_ms": ts_cpu * 1e3,
                "synth_gflops": synth_gflop / ts,
                "arm_ms": ta * 1e3,
                "arm_cpu_ms": ta_cpu * 1e3,
                "arm_gflops": arm_gflop / ta,
                "step_ms": tstep * 1e3,
                "step_cpu_ms": tstep_cpu * 1e3,
                "step_gflops": step_gflop / tstep,
            }
        if tk._train_native is not None:  # before/after the C upsampler, alternately
            res[f"c_vs_numba_up_{n_thr}t"] = c_vs_numba_up(
                h, w, target, args.steps, args.repeat, widths_hw
            )
    ceiling = res.get("sgemm_gflops_2t")
    lines = [
        f"{res['image']} {w}x{h}, simd={res['cpu_simd']}; GFLOP: synthesis "
        f"{synth_gflop:.3f}, ARM {arm_gflop:.3f} ({positions} positions), step {step_gflop:.3f}",
    ]
    for n_thr in (int(t) for t in args.threads.split(",")):
        gemm, gemm_cpu = res[f"sgemm_gflops_{n_thr}t"], res[f"sgemm_gflops_per_cpu_s_{n_thr}t"]
        lines.append(
            f"sgemm 2048^3, {n_thr} thread(s): {gemm:.1f} GFLOP/s, {gemm_cpu:.1f} per CPU second"
        )
        for be in BACKENDS:
            r = res[f"{be}_{n_thr}t"]
            pct = f", {100 * r['step_gflops'] / ceiling:.1f} % of 2t sgemm" if ceiling else ""
            lines.append(
                f"  {be:6s} {n_thr}t: synth {r['synth_ms']:6.1f} ms ({r['synth_gflops']:5.1f} "
                f"GFLOP/s; cpu {r['synth_cpu_ms']:.1f} ms)  arm {r['arm_ms']:6.1f} ms "
                f"({r['arm_gflops']:5.1f} GFLOP/s; cpu {r['arm_cpu_ms']:.1f} ms)  step "
                f"{r['step_ms']:6.1f} ms ({r['step_gflops']:5.1f} GFLOP/s{pct}; cpu "
                f"{r['step_cpu_ms']:.1f} ms)"
            )
        ab = res.get(f"c_vs_numba_up_{n_thr}t")
        if ab:
            lines.append(
                f"  alternating {n_thr}t: step c {ab['c_ms']:.1f} ms (cpu {ab['c_cpu_ms']:.1f}), "
                f"c with the numba upsampler {ab['numba_up_ms']:.1f} ms (cpu "
                f"{ab['numba_up_cpu_ms']:.1f}): {ab['numba_up_ms'] / ab['c_ms']:.2f}x"
            )
    print("\n".join(lines))
    if args.json:
        with open(args.json, "a") as fh:
            fh.write(json.dumps(res) + "\n")


if __name__ == "__main__":
    main()
