"""Training-step time of lossy encoder configurations, as a whole encode runs them.

Each configuration (the `default` preset for the image, with ``KEY=VALUE`` overrides of its
TrainConfig / ArchConfig fields joined by ``+``; ``base`` for none) is encoded with
``--steps`` steps, alternating with the others over ``--rounds`` rounds, and the best round's
training seconds per step and the seconds after training (rounding, ARM fine-tuning,
quantisation, coding) are printed, with the sgemm ceiling (torch.mm 2048^3) measured in the
same run. Why alternate: this VM's speed drifts by a quarter within an hour, so only ratios
measured side by side compare; scripts/bench_train_kernels.py times the kernels alone, this
the steps as train() runs them (half the rows for the first 60 %, the optimisers, Python).

    PYTHONPATH=src python scripts/measure_step_time.py --steps 500 \\
        syn_hidden=24+arm_hidden=16 base
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the encoder runs, before torch loads

import numpy as np
import torch
from PIL import Image
from shared_data import KODAK
from time_to_quality import configure, parse_overrides

from neural_memory.lossy.encoding import encoder
from neural_memory.lossy.encoding.heap import retained_heap


def sgemm_gflops(repeat: int = 10) -> float:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * 2048**3 / best / 1e9


def encode_times(img: np.ndarray, variant: str, steps: int, lmbda: float) -> tuple[float, float]:
    """(training seconds, seconds after training) of one encode."""
    overrides = parse_overrides([v for v in variant.split("+") if v != "base"])
    arch, tcfg = configure(steps, overrides, img, lmbda)
    train_model, spent = encoder.train_model, {}

    def timed_train(*args, **kwargs):
        t0 = time.perf_counter()
        out = train_model(*args, **kwargs)
        spent["train"] = time.perf_counter() - t0
        return out

    encoder.train_model = timed_train
    try:
        with retained_heap():
            t0 = time.perf_counter()
            encoder.fit(img, arch, tcfg, lmbda)
            total = time.perf_counter() - t0
    finally:
        encoder.train_model = train_model
    return spent["train"], total - spent["train"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("variants", nargs="+", help="KEY=VALUE[+KEY=VALUE...] or base")
    ap.add_argument("--image", default=str(KODAK / "kodim23.png"))
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lmbda", type=float, default=1e-3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    img = np.asarray(Image.open(args.image).convert("RGB"))
    print(f"sgemm 2048^3, {args.threads} threads: {sgemm_gflops():.0f} GFLOP/s", flush=True)
    best: dict[str, tuple[float, float]] = {}
    for _ in range(args.rounds):
        for v in args.variants:
            train_s, after_s = encode_times(img, v, args.steps, args.lmbda)
            print(f"  {v}: {train_s / args.steps * 1e3:.1f} ms/step, after {after_s:.1f} s",
                  flush=True)  # fmt: skip
            if v not in best or train_s < best[v][0]:
                best[v] = (train_s, after_s)
    print(f"sgemm again: {sgemm_gflops():.0f} GFLOP/s")
    for v, (train_s, after_s) in best.items():
        print(f"{v}: best {train_s / args.steps * 1e3:.1f} ms/step, after training {after_s:.1f} s")


if __name__ == "__main__":
    main()
