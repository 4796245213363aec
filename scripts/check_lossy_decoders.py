"""The C lossy decoder against the numba reference on the benchmark's rate points (issue 16).

    PYTHONPATH=src python scripts/check_lossy_decoders.py ../shared/data/kodak/kodim*.png \\
        --steps 40 --out runs/lossy_decoders.jsonl
    PYTHONPATH=src python scripts/check_lossy_decoders.py --summarize runs/lossy_decoders.jsonl

For each image and each of the benchmark's lambdas (``bench.codecs.DEFAULT_LAMBDAS``) it
encodes a payload (``--steps`` training steps: the decoders' work does not depend on how long
the encoder trained, only on the payload, so short encodes give the benchmark's kinds of
payload in minutes instead of hours), then decodes it with the C decoder and with the numba
reference at the stored size, at a third and at about twice the size, and records whether
every pixel agrees. Resumable: finished (image, lambda) pairs in ``--out`` are skipped.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np


def _renders(h: int, w: int) -> list[tuple[int, int]]:
    return [(w, h), (max(1, w // 3), max(1, h // 3)), (2 * w + 1, 2 * h - 1)]


def check(path: Path, lmbda: float, steps: int) -> dict:
    from PIL import Image

    from neural_memory.lossy.decoding.decoder import decode_lossy
    from neural_memory.lossy.decoding.reference import decode_lossy_reference
    from neural_memory.lossy.encoding.encoder import fit, image_preset

    pixels = np.asarray(Image.open(path).convert("RGB"))
    h, w, c = pixels.shape
    arch, tcfg = image_preset("default", pixels, lmbda)
    start = time.perf_counter()
    payload = fit(pixels, arch, replace(tcfg, steps=steps), lmbda=lmbda, seed=0)
    encode_s = time.perf_counter() - start
    renders = []
    for out_w, out_h in _renders(h, w):
        size = {} if (out_w, out_h) == (w, h) else {"size": (out_w, out_h)}
        ours = decode_lossy(payload, h, w, c, **size)
        reference = decode_lossy_reference(payload, h, w, c, **size)
        renders.append(
            {"size": f"{out_w}x{out_h}", "identical": bool(np.array_equal(ours, reference))}
        )
    return {
        "image": path.name,
        "lambda": lmbda,
        "steps": steps,
        "payload_bytes": len(payload),
        "bpp": 8 * len(payload) / (h * w),
        "encode_s": round(encode_s, 1),
        "renders": renders,
        "identical": all(r["identical"] for r in renders),
    }


def summarize(path: Path) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    same = sum(r["identical"] for r in rows)
    renders = sum(len(r["renders"]) for r in rows)
    bpp = [r["bpp"] for r in rows]
    print(
        f"{same}/{len(rows)} payloads identical at every render size ({renders} decodes each "
        f"way), {len({r['image'] for r in rows})} images, lambdas "
        f"{sorted({r['lambda'] for r in rows}, reverse=True)}, payloads {min(bpp):.3f}-"
        f"{max(bpp):.3f} bpp"
    )
    for r in rows:
        if not r["identical"]:
            print(f"  differs: {r['image']} lambda {r['lambda']}: {r['renders']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="*", type=Path)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--lambdas", type=float, nargs="+")
    parser.add_argument("--out", type=Path, default=Path("runs/lossy_decoders.jsonl"))
    parser.add_argument("--summarize", type=Path, help="print the summary of a finished --out")
    args = parser.parse_args()
    if args.summarize:
        summarize(args.summarize)
        return
    from neural_memory.bench.codecs import DEFAULT_LAMBDAS

    lambdas = args.lambdas or list(DEFAULT_LAMBDAS)
    done = set()
    if args.out.exists():
        for line in args.out.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                done.add((row["image"], row["lambda"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for path in args.images:
        for lmbda in lambdas:
            if (path.name, lmbda) in done:
                continue
            row = check(path, lmbda, args.steps)
            with args.out.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
            print(
                f"{path.name} lambda {lmbda:g}: {row['bpp']:.3f} bpp, identical="
                f"{row['identical']} (encode {row['encode_s']} s)",
                flush=True,
            )
    summarize(args.out)


if __name__ == "__main__":
    main()
