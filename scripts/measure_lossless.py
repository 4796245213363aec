"""Measure the lossless / near-lossless engine on a folder of images and print a table.

For every image: bpsp = 8 * payload bytes / (H * W * C) (engine payload, without the
container's few header bytes), the max absolute error after decoding (must be <= near),
and encode/decode speed in KB of raw pixel data per second (single thread), both by wall
clock and by the process's CPU time (the latter is what one core delivers when the machine
is shared). It runs the package's engine (C, native/src/lossless.c); a tiny image is coded
first so that loading the library is not charged to the first image.
(scripts/measure_native_lossless.py sets it beside the numba reference engine.)

    NUMBA_NUM_THREADS=1 PYTHONPATH=src python scripts/measure_lossless.py \\
        ../shared/data/kodak --near 0 [--limit N] [--no-decode] [--csv out.csv]
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np
from PIL import Image

from neural_memory.lossless import decode_lossless, encode_lossless


def load(path: Path) -> tuple[np.ndarray, int]:
    """Image as (H, W, C) uint8/uint16 and its bit depth."""
    im = Image.open(path)
    if im.mode in ("I;16", "I;16B", "I"):
        arr = np.asarray(im).astype(np.uint16)
        depth = 16
    else:
        if im.mode not in ("L", "RGB", "RGBA"):
            im = im.convert("RGB")
        arr = np.asarray(im)
        depth = 8
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return np.ascontiguousarray(arr), depth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--near", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0, help="only the first N images")
    ap.add_argument("--no-decode", action="store_true", help="skip decoding (no max error)")
    ap.add_argument("--csv", type=Path, help="also write per-image rows to this CSV file")
    args = ap.parse_args()

    files = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in (".png", ".ppm", ".pgm"))
    if args.limit:
        files = files[: args.limit]
    warm = np.zeros((4, 4, 3), np.uint8)
    decode_lossless(encode_lossless(warm, 8, args.near), 4, 4, 3, 8, args.near)

    rows = []
    head = f"{'image':40s} {'HxWxC':>14s} {'bpsp':>7s} {'maxerr':>6s}"
    print(head + f" {'enc KB/s':>9s} {'dec KB/s':>9s} {'enc cpu':>8s} {'dec cpu':>8s}")
    for path in files:
        img, depth = load(path)
        h, w, c = img.shape
        raw_kb = img.nbytes / 1000
        t0, c0 = time.perf_counter(), time.process_time()
        payload = encode_lossless(img, depth, args.near)
        te, tce = time.perf_counter() - t0, time.process_time() - c0
        bpsp = 8 * len(payload) / (h * w * c)
        maxerr, td, tcd = -1, float("nan"), float("nan")
        if not args.no_decode:
            t0, c0 = time.perf_counter(), time.process_time()
            out = decode_lossless(payload, h, w, c, depth, args.near)
            td, tcd = time.perf_counter() - t0, time.process_time() - c0
            maxerr = int(np.abs(out.astype(np.int64) - img.astype(np.int64)).max())
        row = dict(
            image=path.name,
            h=h,
            w=w,
            c=c,
            depth=depth,
            near=args.near,
            bytes=len(payload),
            bpsp=bpsp,
            maxerr=maxerr,
            enc_s=te,
            dec_s=td,
            enc_kbps=raw_kb / te,
            dec_kbps=raw_kb / td,
            enc_cpu_kbps=raw_kb / tce,
            dec_cpu_kbps=raw_kb / tcd if tcd == tcd and tcd > 0 else float("nan"),
        )
        rows.append(row)
        print(
            f"{path.name[:40]:40s} {f'{h}x{w}x{c}':>14s} {bpsp:7.4f} {maxerr:6d} "
            f"{row['enc_kbps']:9.0f} {row['dec_kbps']:9.0f} "
            f"{row['enc_cpu_kbps']:8.0f} {row['dec_cpu_kbps']:8.0f}",
            flush=True,
        )
    if rows:
        mean = lambda k: float(np.mean([r[k] for r in rows]))  # noqa: E731
        print(
            f"{'MEAN (' + str(len(rows)) + ' images)':40s} {'':>14s} {mean('bpsp'):7.4f} "
            f"{max(r['maxerr'] for r in rows):6d} {mean('enc_kbps'):9.0f} "
            f"{mean('dec_kbps'):9.0f} {mean('enc_cpu_kbps'):8.0f} {mean('dec_cpu_kbps'):8.0f}"
        )
    if args.csv:
        with args.csv.open("w", newline="") as fh:
            wr = csv.DictWriter(fh, fieldnames=list(rows[0]))
            wr.writeheader()
            wr.writerows(rows)


if __name__ == "__main__":
    main()
