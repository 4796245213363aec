"""Lossless / near-lossless engine, C library vs the numba reference, side by side in one run
(docs/BENCHMARKS.md, issue 16).

    NUMBA_NUM_THREADS=1 PYTHONPATH=src python scripts/measure_native_lossless.py \
        ../shared/data/kodak/kodim0{1,2,3}.png --near 0 1 2 4 [--json OUT] [--no-time]
    python scripts/measure_native_lossless.py --summarize OUT.json [...]

For each image and bound k: whether C and numba write the same payload byte for byte and
decode it to the same pixels, and (unless --no-time) the encode and decode speed of each in
KB/s of raw samples (H * W * C * bytes per sample / CPU time of the call, or wall time with
--wall; one thread, a warm numba cache, the engines alternated so that a busy machine affects
both alike; --repeat N keeps the best of N runs of each call). The ratio C/numba is the
figure to compare across machines.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from neural_memory import _native
from neural_memory.lossless import decode_lossless_numba, encode_lossless_numba

WALL = False


def _load(path: Path) -> np.ndarray:
    img = np.asarray(Image.open(path))
    return img[:, :, None] if img.ndim == 2 else img


def _c_encode(img: np.ndarray, depth: int, near: int) -> bytes:
    h, w, c = img.shape
    return _native.lossless_encode(np.ascontiguousarray(img), h, w, c, depth, near)


def _c_decode(payload: bytes, shape: tuple, depth: int, near: int) -> np.ndarray:
    h, w, c = shape
    raw = _native.lossless_decode(payload, h, w, c, depth, near)
    return np.frombuffer(raw, dtype=np.uint8 if depth == 8 else np.uint16).reshape(shape)


REPEAT = 1


def _timed(fn, *args):
    """(result, seconds): CPU seconds of this process, which a busy shared machine inflates
    less than wall time (both engines run in one thread here); --wall for wall time."""
    clock = time.perf_counter if WALL else time.process_time
    best = None
    for _ in range(REPEAT):
        t = clock()
        out = fn(*args)
        spent = clock() - t
        best = spent if best is None else min(best, spent)
    return out, best


def summarize(rows: list[dict]) -> None:
    """Per bound k: how many rows were identical, and the geometric means of C/numba speed
    (and of the KB/s of each engine)."""
    for near in sorted({r["near"] for r in rows}):
        sel = [r for r in rows if r["near"] == near]
        if "enc_kbs_c" not in sel[0]:
            continue

        def gmean(key: str, sel=sel) -> float:
            return float(np.exp(np.mean([np.log(r[key]) for r in sel])))

        enc = float(np.exp(np.mean([np.log(r["enc_kbs_c"] / r["enc_kbs_numba"]) for r in sel])))
        dec = float(np.exp(np.mean([np.log(r["dec_kbs_c"] / r["dec_kbs_numba"]) for r in sel])))
        same = sum(r["identical"] for r in sel)
        print(
            f"k={near}: {same}/{len(sel)} identical; encode C {gmean('enc_kbs_c'):.0f} KB/s,"
            f" numba {gmean('enc_kbs_numba'):.0f} KB/s, C/numba {enc:.2f}x; decode C"
            f" {gmean('dec_kbs_c'):.0f}, numba {gmean('dec_kbs_numba'):.0f}, C/numba {dec:.2f}x"
            " (geometric means)"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("images", nargs="*", type=Path)
    ap.add_argument("--summarize", nargs="+", type=Path, help="only summarize --json outputs")
    ap.add_argument("--near", nargs="+", type=int, default=[0])
    ap.add_argument("--json", type=Path)
    ap.add_argument("--no-time", action="store_true", help="only check bit-exactness")
    ap.add_argument("--wall", action="store_true", help="time by wall clock, not CPU time")
    ap.add_argument("--repeat", type=int, default=1, help="best of N runs of each call")
    args = ap.parse_args()
    global WALL, REPEAT
    WALL, REPEAT = args.wall, max(1, args.repeat)
    if args.summarize:
        summarize([row for path in args.summarize for row in json.loads(path.read_text())])
        return 0
    # warm numba's kernels (compile or load from the cache) outside the timings
    tiny = np.zeros((4, 4, 3), np.uint8)
    decode_lossless_numba(encode_lossless_numba(tiny, 8, 0), 4, 4, 3, 8, 0)
    rows = []
    bad = 0
    for path in args.images:
        img = _load(path)
        depth = 16 if img.dtype == np.uint16 else 8
        kb = img.size * img.itemsize / 1024
        for near in args.near:
            c_pay, c_enc = _timed(_c_encode, img, depth, near)
            n_pay, n_enc = _timed(encode_lossless_numba, img, depth, near)
            c_out, c_dec = _timed(_c_decode, n_pay, img.shape, depth, near)
            n_out, n_dec = _timed(decode_lossless_numba, n_pay, *img.shape, depth, near)
            same = c_pay == n_pay and np.array_equal(c_out, n_out)
            bad += not same
            row = {
                "image": path.name,
                "near": near,
                "bytes": len(n_pay),
                "bpsp": 8 * len(n_pay) / img.size,
                "identical": same,
                "enc_kbs_c": kb / c_enc,
                "enc_kbs_numba": kb / n_enc,
                "dec_kbs_c": kb / c_dec,
                "dec_kbs_numba": kb / n_dec,
            }
            if args.no_time:
                row = {k: v for k, v in row.items() if "kbs" not in k}
            rows.append(row)
            line = f"{path.name} k={near}: {len(n_pay)} bytes, identical={same}"
            if not args.no_time:
                line += (
                    f", encode C {row['enc_kbs_c']:.0f} KB/s numba {row['enc_kbs_numba']:.0f} KB/s"
                    f" ({row['enc_kbs_c'] / row['enc_kbs_numba']:.2f}x), decode C"
                    f" {row['dec_kbs_c']:.0f} numba {row['dec_kbs_numba']:.0f}"
                    f" ({row['dec_kbs_c'] / row['dec_kbs_numba']:.2f}x)"
                )
            print(line, flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    print(f"{len(rows) - bad} of {len(rows)} identical")
    if not args.no_time:
        summarize(rows)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
