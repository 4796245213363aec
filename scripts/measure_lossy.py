"""Measure the lossy engine: bpp, RGB PSNR, encode/decode seconds per image and lambda.

Example (results are appended to the JSON file; finished runs are skipped, so it resumes):

    PYTHONPATH=src python scripts/measure_lossy.py --images kodim23 kodim01 \
        --lmbda 2e-3 5e-4 1.5e-4 --preset default --threads 2 --out runs/lossy.json

bpp counts the engine payload plus CONTAINER_OVERHEAD bytes (the container's magic, header and
CRC), i.e. 8 * bytes / (H * W). With ``--webp`` it also prints the BD-rate against WebP
(Pillow, method 6) on the same images.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import numpy as np
import shared_data
from PIL import Image

from neural_memory.lossy.decoding.decoder import decode_lossy
from neural_memory.lossy.encoding.encoder import encode_lossy
from neural_memory.options import EncodeOptions

CONTAINER_OVERHEAD = 40
DATA = shared_data.DATA


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


def load(name: str) -> np.ndarray:
    for p in (Path(name), DATA / "kodak" / f"{name}.png", DATA / "cid22" / f"{name}.png"):
        if p.is_file():
            return np.asarray(Image.open(p).convert("RGB"))
    raise FileNotFoundError(name)


def webp_points(img: np.ndarray) -> list[tuple[float, float]]:
    pts = []
    for q in (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95):
        b = io.BytesIO()
        Image.fromarray(img).save(b, "WEBP", quality=q, method=6)
        dec = np.asarray(Image.open(io.BytesIO(b.getvalue())).convert("RGB"))
        pts.append((8 * len(b.getvalue()) / (img.shape[0] * img.shape[1]), psnr(img, dec)))
    return pts


def bd_rate(ref: list[tuple[float, float]], test: list[tuple[float, float]]) -> float:
    """BD-rate (%) of test vs ref: PCHIP of log-rate over the common PSNR range."""
    from scipy.interpolate import PchipInterpolator

    r = sorted(ref, key=lambda p: p[1])
    t = sorted(test, key=lambda p: p[1])
    lo, hi = max(r[0][1], t[0][1]), min(r[-1][1], t[-1][1])
    if hi <= lo or len(t) < 2:
        return float("nan")
    fr = PchipInterpolator([p[1] for p in r], np.log([p[0] for p in r]))
    ft = PchipInterpolator([p[1] for p in t], np.log([p[0] for p in t]))
    xs = np.linspace(lo, hi, 200)
    return float((np.exp(np.mean(ft(xs) - fr(xs))) - 1) * 100)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--images", nargs="+", required=True)
    ap.add_argument("--lmbda", nargs="+", type=float, required=True)
    ap.add_argument("--preset", default="default")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--crop", type=int, default=0, help="centre crop size (0 = full image)")
    ap.add_argument("--out", type=Path, default=Path("runs/lossy.json"))
    ap.add_argument("--webp", action="store_true")
    ap.add_argument("--verbose", action="store_true", help="print training progress")
    args = ap.parse_args()
    results = json.loads(args.out.read_text()) if args.out.exists() else []
    done = {(r["image"], r["lmbda"], r["preset"], r.get("crop", 0)) for r in results}
    for name in args.images:
        img = load(name)
        if args.crop:
            h, w = img.shape[:2]
            c = args.crop
            img = img[(h - c) // 2 : (h + c) // 2, (w - c) // 2 : (w + c) // 2].copy()
        h, w, ch = img.shape
        for lm in args.lmbda:
            if (name, lm, args.preset, args.crop) in done:
                continue
            cfg = EncodeOptions(lmbda=lm, preset=args.preset, threads=args.threads)
            t0 = time.perf_counter()

            def progress(step: int, total: int, log: dict, name: str = name) -> None:
                if step % 50 == 0 or step == total:
                    print(f"  {name} step {step}/{total} {log}", flush=True)

            payload = encode_lossy(img, cfg, progress=progress if args.verbose else None)
            t_enc = time.perf_counter() - t0
            decode_lossy(payload, h, w, ch)  # warm the numba cache
            t0 = time.perf_counter()
            out = decode_lossy(payload, h, w, ch)
            t_dec = time.perf_counter() - t0
            rec = {
                "image": name, "lmbda": lm, "preset": args.preset, "crop": args.crop,
                "bytes": len(payload) + CONTAINER_OVERHEAD,
                "bpp": 8 * (len(payload) + CONTAINER_OVERHEAD) / (h * w),
                "psnr": psnr(img, out), "encode_s": t_enc, "decode_s": t_dec,
                "threads": args.threads,
            }  # fmt: skip
            print(json.dumps(rec), flush=True)
            results.append(rec)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=1))
        if args.webp:
            mine = [(r["bpp"], r["psnr"]) for r in results
                    if r["image"] == name and r["preset"] == args.preset
                    and r.get("crop", 0) == args.crop]  # fmt: skip
            print(f"{name}: BD-rate vs WebP {bd_rate(webp_points(img), mine):+.1f}%", flush=True)


if __name__ == "__main__":
    main()
