"""Fit the ARM prior that lossy encoding starts from (lossy/encoding/arm_prior.npy).

The images are the CLIC 2025 validation photographs, a set the lossy benchmarks (Kodak,
CID22) do not use. Each image (a centre crop) is encoded with the default schedule, starting
its ARM where the previous image's ended, at lambdas that cycle over the usual range and end
in its middle; the last ARM is the prior. See neural_memory/lossy/encoding/arm_prior.py for why.

    PYTHONPATH=src python scripts/train_arm_prior.py ../shared/data/clic2025 \
        --out src/neural_memory/lossy/encoding/arm_prior.npy
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from neural_memory.atomic import write_atomic
from neural_memory.lossy.encoding.arm_prior import PRIOR_WIDTH, arm_vector
from neural_memory.lossy.encoding.encoder import train_model
from neural_memory.lossy.encoding.heap import retained_heap
from neural_memory.lossy.encoding.presets import preset


def centre_crop(img: np.ndarray, size: int) -> np.ndarray:
    h, w = img.shape[:2]
    ch, cw = min(size, h), min(size, w)
    return img[(h - ch) // 2 : (h + ch) // 2, (w - cw) // 2 : (w + cw) // 2].copy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path, help="folder of PNG photographs")
    ap.add_argument("--out", type=Path, required=True, help="where to write the .npy")
    ap.add_argument("--crop", type=int, default=512, help="centre crop size (default 512)")
    ap.add_argument("--steps", type=int, default=850, help="training steps per image")
    ap.add_argument(
        "--lmbda", type=float, nargs="+", default=[2e-3, 1.5e-4, 5e-4],
        help="lambdas, cycled over the images (default: 2e-3 1.5e-4 5e-4)",
    )  # fmt: skip
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--width", type=int, default=PRIOR_WIDTH,
        help=f"ARM hidden width of the prior (default {PRIOR_WIDTH}); a wider one starts from "
        "the narrower priors that ship, embedded",
    )  # fmt: skip
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    paths = sorted(args.folder.glob("*.png"))
    if not paths:
        raise SystemExit(f"no PNG files in {args.folder}")
    # the prior's ARM width is chosen here, whatever the presets use: an ARM starts from the
    # prior of its width, else from a narrower one embedded (arm_prior.load_arm_prior)
    arch, tcfg = preset("default", 3, args.crop * args.crop, args.lmbda[-1])
    arch = dataclasses.replace(arch, arm_hidden=args.width)
    # the first image starts from the narrower shipped priors (embedded), if any
    tcfg = dataclasses.replace(tcfg, steps=args.steps, arm_prior=args.width > PRIOR_WIDTH)
    vec = None
    with retained_heap():
        for i, path in enumerate(paths):
            lm = args.lmbda[(i - len(paths)) % len(args.lmbda)]  # the last image gets the last
            img = centre_crop(np.asarray(Image.open(path).convert("RGB")), args.crop)
            t0 = time.time()
            model, _, _ = train_model(img, arch, tcfg, lm, arm_start=vec)
            vec = arm_vector(model.arm)
            print(f"{path.name}: {img.shape[1]}x{img.shape[0]}, lambda {lm:g}, "
                  f"{time.time() - t0:.0f} s", flush=True)  # fmt: skip
    write_atomic(args.out, lambda tmp: np.save(tmp, vec))
    print(f"wrote {args.out} ({vec.size} values)")


if __name__ == "__main__":
    main()
