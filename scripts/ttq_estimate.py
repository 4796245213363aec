"""Time-to-quality by estimate: train like the encoder, then estimate the file from the float
model instead of quantising and coding it. For prototypes whose payload the decoder cannot
read yet (a new network piece): train and compare them before writing the format.

The estimate: latents rounded, the ARM fine-tuned on them as the encoder does, their bits from
the ARM on every position, 4 bits per network weight and the container's 24 bytes; PSNR of
the float model on the rounded latents (no weight quantisation). Records go to a JSON-lines
file in time_to_quality.py's format, so its ``--report`` reads them; copy the anchors' lines
of the quick set into it first. Compare estimates with estimates only: they run about 19
points below the real files' BD-rate (the recipe of 2026-12-05 at 850 steps: +10.7 % by
estimate, +29.5 % measured).

    grep '"anchor:' docs/bench/ttq/quick.jsonl > runs/est.jsonl
    PYTHONPATH=src python scripts/ttq_estimate.py --label est-base --steps 850 --out runs/est.jsonl
    PYTHONPATH=src python scripts/ttq_estimate.py --label est-rows1 --steps 850 \\
        --out runs/est.jsonl --set row_frac=1.0
    PYTHONPATH=src python scripts/time_to_quality.py --report --per-image --out runs/est.jsonl
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
from time_to_quality import (
    DEV_IMAGES,
    QUICK_CROP,
    QUICK_LAMBDAS,
    append,
    configure,
    dev_image,
    load_records,
    parse_overrides,
)

from neural_memory.lossy.encoding.encoder import CONTAINER_BITS, train_model
from neural_memory.lossy.encoding.train import finetune_arm

WEIGHT_BITS = 4.0  # per network weight, as the encoder's progress estimate


def estimate(img, lmbda: float, steps: int, overrides: dict[str, str]) -> dict:
    h, w, c = img.shape
    arch, tcfg = configure(steps, overrides, img, lmbda)
    t0 = time.perf_counter()
    model, target, _ = train_model(img, arch, tcfg, lmbda)
    ys = [torch.round(y.detach()) for y in model.latents]
    finetune_arm(model, ys, tcfg.arm_finetune_steps)
    with torch.no_grad():
        bits = float(model.rate_bits(ys, 1))
        sse = model.squared_error(ys, target.reshape(c, h, w))
    latents = {id(p) for p in model.latents}
    weights = sum(p.numel() for p in model.parameters() if id(p) not in latents)
    return {
        "bytes": (bits + WEIGHT_BITS * weights + CONTAINER_BITS) / 8,
        "psnr": -10 * math.log10(sse / target.numel()),
        "seconds": time.perf_counter() - t0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--label", required=True)
    ap.add_argument("--steps", type=int, default=850)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    overrides = parse_overrides(args.set)
    done = {
        (r["label"], r["image"], r.get("lmbda"), r.get("steps")) for r in load_records(args.out)
    }
    for name in DEV_IMAGES:
        img = dev_image(name, QUICK_CROP)
        for lmbda in QUICK_LAMBDAS:
            if (args.label, name, lmbda, args.steps) in done:
                continue
            r = estimate(img, lmbda, args.steps, overrides)
            r.update(label=args.label, image=name, set="quick", lmbda=lmbda, steps=args.steps,
                     overrides=overrides, pixels=img.shape[0] * img.shape[1])  # fmt: skip
            append(args.out, r)
            print(f"{args.label} {name} lambda {lmbda:g}: {8 * r['bytes'] / r['pixels']:.3f} bpp "
                  f"{r['psnr']:.2f} dB (estimated)", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
