"""Peak resident memory of a lossy encode of a large image (default 2048 x 2048 RGB).

The peak is reached in the full-image training steps, so a short run (``--steps``, default
10, of which the last 40 % use every row, as in a real encode) followed by the quantisation
search measures it; the figure does not grow with the number of steps.

    PYTHONPATH=src python scripts/measure_lossy_memory.py --size 2048 --steps 10
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
from PIL import Image
from shared_data import KODAK

from neural_memory.lossy.encoding.encoder import encode_lossy
from neural_memory.options import EncodeOptions

KODIM23 = str(KODAK / "kodim23.png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--image", default=KODIM23, help="resized to size x size")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    img = np.asarray(Image.open(args.image).convert("RGB").resize((args.size, args.size)))

    t0 = time.perf_counter()  # same model and schedule as the default preset, fewer steps
    options = EncodeOptions(lmbda=1e-3, threads=args.threads, steps=args.steps)
    payload = encode_lossy(img, options)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{args.size}x{args.size} RGB, {args.steps} steps: peak RSS {peak_mib:.0f} MiB, "
        f"{time.perf_counter() - t0:.1f} s, payload {len(payload)} bytes"
    )


if __name__ == "__main__":
    main()
