"""What images cost at the lossy encoder's analytic start, and the synthesis width it picks.

For each image and lambda: the estimated latent bits of the analytic start
(encoder.start_bits, the quantity presets.widths compares with
NARROW_SYN_BELOW_START_BITS) and the synthesis width of the ``default`` preset. Why a
script: it says which images of a set the width rule switches before any encode (a second
or so per Kodak image and lambda), e.g. that no Kodak image does at the benchmark's rates.

    PYTHONPATH=src python scripts/start_bits.py ../shared/data/kodak --lambdas 0.01,0.003
    PYTHONPATH=src python scripts/start_bits.py --dev   # time_to_quality's whole-image set
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image


def main() -> None:
    from neural_memory.lossy.encoding.encoder import start_bits
    from neural_memory.lossy.encoding.presets import NARROW_SYN_BELOW_START_BITS, preset

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="*", type=Path, help="images or folders of PNG images")
    ap.add_argument("--dev", action="store_true", help="time_to_quality's --full images too")
    ap.add_argument("--lambdas", default="0.01,0.003,0.001,0.0003")
    args = ap.parse_args()
    lambdas = [float(v) for v in args.lambdas.split(",")]
    files = sorted(f for p in args.paths for f in (sorted(p.glob("*.png")) if p.is_dir() else [p]))
    images = [(f.name, lambda f=f: np.asarray(Image.open(f).convert("RGB"))) for f in files]
    if args.dev:
        from time_to_quality import DEV_IMAGES, FULL_CROP, dev_image

        images += [(n, lambda n=n: dev_image(n, FULL_CROP)) for n in DEV_IMAGES]
    print(f"start bits (kbit), default synthesis width (estimate's time); narrow below "
          f"{NARROW_SYN_BELOW_START_BITS / 1000:g} kbit")  # fmt: skip
    for name, load in images:
        img = load()
        h, w, c = img.shape
        cells = []
        for lmbda in lambdas:
            arch, tcfg = preset("default", c, h * w, lmbda)
            t0 = time.perf_counter()
            bits = start_bits(img, arch, tcfg, lmbda)
            seconds = time.perf_counter() - t0
            width = preset("default", c, h * w, lmbda, start_bits=bits)[0].syn_hidden[0]
            cells.append(f"{lmbda:g}: {bits / 1000:6.1f} k / {width} ({seconds:.2f} s)")
        print(f"{name.split('/')[-1][:24]:24s} " + "  ".join(cells), flush=True)


if __name__ == "__main__":
    main()
