#!/usr/bin/env python
"""Inpainting and 2x-upscaling benchmark on Kodak (issue 5).

Inpainting: for every image and mask kind (seeded random 50% pixels, thin strokes, 64x64
boxes), PSNR inside the masked region (MSE over masked pixels and all channels, peak 255) of
ours against OpenCV Telea / Navier-Stokes and scikit-image biharmonic, with wall time.
Scale: encode a 2x-downscaled copy with the lossy codec, decode it with ``scale=2`` and compare
with the original, beside bicubic and Lanczos upscaling of the same downscaled copy.

Results are appended one JSON line per (task, image, mask, method) to ``--out`` and rows
already there are skipped, so an interrupted run resumes where it stopped.

    python scripts/bench_inpaint.py --limit 24 --threads 2
    python scripts/bench_inpaint.py --task scale --limit 4
    python scripts/bench_inpaint.py --report       # markdown tables from the JSONL
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from shared_data import KODAK

from neural_memory.images import load_image, save_image
from neural_memory.metrics import psnr
from neural_memory.reconstruct.masks import MASK_KINDS, make_mask

METHODS = ("telea", "ns", "biharmonic", "ours")


def masked_psnr(reference: np.ndarray, test: np.ndarray, mask: np.ndarray) -> float:
    """PSNR over the masked pixels only (all channels pooled, peak 255)."""
    diff = reference[mask].astype(np.float64) - test[mask].astype(np.float64)
    return float(10 * np.log10(255.0**2 / max(np.mean(diff * diff), 1e-12)))


def run_method(method: str, image: np.ndarray, mask: np.ndarray, kind: str) -> np.ndarray:
    """One inpainting result as uint8 (H, W, 3)."""
    if method in ("telea", "ns"):
        import cv2

        flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS
        return cv2.inpaint(image, mask.astype(np.uint8) * 255, 3, flag)
    if method == "biharmonic":
        from skimage.restoration import inpaint_biharmonic

        out = inpaint_biharmonic(image, mask, channel_axis=-1)  # float in [0, 1]
        return np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)
    if method == "ours":
        from neural_memory.reconstruct import inpaint

        return inpaint(image, mask, kind=kind)
    raise ValueError(method)


def load_done(path: Path) -> set[tuple]:
    done = set()
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                done.add((row["task"], row["image"], row["mask"], row["method"]))
    return done


def append(path: Path, row: dict) -> None:
    with open(path, "a") as handle:
        handle.write(json.dumps(row) + "\n")


def montage(panels: list[np.ndarray], box: tuple[int, int, int, int] | None) -> np.ndarray:
    """Panels side by side with a 4-pixel white gutter, optionally cropped to ``box``."""
    if box is not None:
        y0, y1, x0, x1 = box
        panels = [p[y0:y1, x0:x1] for p in panels]
    gutter = np.full((panels[0].shape[0], 4, 3), 255, np.uint8)
    row = []
    for p in panels:
        row += [p, gutter]
    return np.concatenate(row[:-1], axis=1)


def bench_inpaint(args, names: list[str], done: set[tuple]) -> None:
    for name in names:
        image = load_image(KODAK / f"{name}.png")
        for kind in args.masks:
            mask = make_mask(kind, image.shape[0], image.shape[1], seed=args.seed)
            results = {}
            for method in args.methods:
                if ("inpaint", name, kind, method) in done and name not in args.montage:
                    continue
                start, cpu = time.perf_counter(), time.process_time()
                out = run_method(method, image, mask, kind)
                seconds = time.perf_counter() - start
                cpu = time.process_time() - cpu
                results[method] = out
                if ("inpaint", name, kind, method) in done:
                    continue
                row = {
                    "task": "inpaint",
                    "image": name,
                    "mask": kind,
                    "method": method,
                    "psnr_masked": masked_psnr(image, out, mask),
                    "psnr_full": psnr(image, out),
                    "seconds": round(seconds, 3),
                    "cpu_seconds": round(cpu, 3),
                    "load": round(os.getloadavg()[0], 2),
                    "missing": float(mask.mean()),
                    "threads": args.threads,
                }
                append(args.out, row)
                print(json.dumps(row), flush=True)
            if name in args.montage and "ours" in results:
                masked = image.copy()
                masked[mask] = 255
                baselines = [m for m in ("telea", "ns", "biharmonic") if m in results]
                best = max(baselines, key=lambda m: masked_psnr(image, results[m], mask))
                panels = [image, masked, results["ours"], results[best]]
                args.figures.mkdir(parents=True, exist_ok=True)
                whole = montage([p[::2, ::2] for p in panels], None)  # half size: docs stay small
                save_image(args.figures / f"{name}-{kind}.png", whole)
                # crop around the missing pixel nearest the image centre: for boxes and
                # strokes that shows one whole hole with its surroundings
                ys, xs = np.nonzero(mask)
                near = np.argmin((ys - image.shape[0] / 2) ** 2 + (xs - image.shape[1] / 2) ** 2)
                cy, cx = int(ys[near]), int(xs[near])
                y0 = int(np.clip(cy - 96, 0, image.shape[0] - 192))
                x0 = int(np.clip(cx - 128, 0, image.shape[1] - 256))
                crop = montage(panels, (y0, y0 + 192, x0, x0 + 256))
                save_image(args.figures / f"{name}-{kind}-crop.png", crop)
                print(f"montage {name}-{kind}: original | masked | ours | {best}", flush=True)


def bench_scale(args, names: list[str], done: set[tuple]) -> None:
    from PIL import Image

    import neural_memory as nm

    for name in names:
        image = load_image(KODAK / f"{name}.png")
        height, width = image.shape[:2]
        small = np.asarray(
            Image.fromarray(image).resize((width // 2, height // 2), Image.Resampling.LANCZOS)
        )
        methods = ("nmem", "nmem-bicubic", "bicubic", "lanczos")
        if all(("scale", name, "x2", m) in done for m in methods):
            continue
        start = time.perf_counter()
        data = nm.encode(small, lmbda=args.lmbda, preset=args.preset, threads=args.threads)
        encode_s = time.perf_counter() - start
        native = nm.decode(data)
        for method in methods:
            start = time.perf_counter()
            extra = {}
            if method == "nmem":
                out = nm.decode(data, scale=2)  # the network sampled on the 2x grid
                extra = {
                    "bytes": len(data),
                    "psnr_small": psnr(small, native),
                    "encode_s": encode_s,
                }
            else:
                # nmem-bicubic: bicubic on the codec's own 1x decode, to separate the
                # compression loss from the quality of the 2x sampling
                src = native if method == "nmem-bicubic" else small
                flt = Image.Resampling.LANCZOS if method == "lanczos" else Image.Resampling.BICUBIC
                out = np.asarray(Image.fromarray(src).resize((width, height), flt))
            seconds = time.perf_counter() - start
            row = {
                "task": "scale",
                "image": name,
                "mask": "x2",
                "method": method,
                "psnr": psnr(image, out),
                "seconds": round(seconds, 3),
                **extra,
            }
            append(args.out, row)
            print(json.dumps(row), flush=True)


def report(path: Path) -> str:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    lines = []
    by = defaultdict(dict)
    for r in rows:
        if r["task"] == "inpaint":
            by[(r["mask"], r["image"])][r["method"]] = r
    for kind in MASK_KINDS:
        images = sorted(i for (k, i), m in by.items() if k == kind and set(METHODS) <= set(m))
        if not images:
            continue
        lines.append(f"\n**{kind}** ({len(images)} images)\n")
        lines.append("| method | mean PSNR in mask (dB) | wins vs best baseline | mean time (s) |")
        lines.append("|---|---|---|---|")
        for method in METHODS:
            vals = [by[(kind, i)][method]["psnr_masked"] for i in images]
            secs = [by[(kind, i)][method]["seconds"] for i in images]
            wins = ""
            if method == "ours":
                n = sum(
                    by[(kind, i)]["ours"]["psnr_masked"]
                    > max(by[(kind, i)][m]["psnr_masked"] for m in METHODS[:3])
                    for i in images
                )
                wins = f"{n}/{len(images)}"
            lines.append(f"| {method} | {np.mean(vals):.2f} | {wins} | {np.mean(secs):.2f} |")
    scale = defaultdict(dict)
    for r in rows:
        if r["task"] == "scale":
            scale[r["image"]][r["method"]] = r
    images = sorted(i for i, m in scale.items() if len(m) == 4)
    if images:
        lines.append(f"\n**2x upscaling** ({len(images)} images: {', '.join(images)})\n")
        lines.append("| method | mean PSNR vs original (dB) | mean time (s) |")
        lines.append("|---|---|---|")
        for method in ("nmem", "nmem-bicubic", "bicubic", "lanczos"):
            vals = [scale[i][method]["psnr"] for i in images]
            secs = [scale[i][method]["seconds"] for i in images]
            lines.append(f"| {method} | {np.mean(vals):.2f} | {np.mean(secs):.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=("inpaint", "scale"), default="inpaint")
    parser.add_argument("--limit", type=int, default=24, help="first N Kodak images")
    parser.add_argument("--images", nargs="*", help="explicit names, e.g. kodim01 kodim05")
    parser.add_argument("--masks", nargs="*", default=list(MASK_KINDS), choices=MASK_KINDS)
    parser.add_argument("--methods", nargs="*", default=list(METHODS), choices=METHODS)
    parser.add_argument("--seed", type=int, default=0, help="mask seed")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("docs/reconstruction/bench_inpaint.jsonl"))
    parser.add_argument("--figures", type=Path, default=Path("docs/reconstruction"))
    parser.add_argument("--montage", nargs="*", default=[], help="images to draw montages of")
    parser.add_argument("--lmbda", type=float, default=None, help="lossy lambda for --task scale")
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--report", action="store_true", help="print tables and exit")
    args = parser.parse_args()
    if args.report:
        print(report(args.out))
        return
    import torch

    torch.set_num_threads(args.threads)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    names = args.images or [f"kodim{i:02d}" for i in range(1, args.limit + 1)]
    done = load_done(args.out)
    if args.task == "inpaint":
        bench_inpaint(args, names, done)
    else:
        bench_scale(args, names, done)


if __name__ == "__main__":
    main()
