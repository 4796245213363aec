"""Per-image BD-rate change of a codec between two benchmark runs, against an anchor codec.

Why: re-running a whole benchmark to check an encoder change on a few images costs hours;
this takes the records of a full run (``OLD``, e.g. docs/bench/kodak/results.jsonl.gz) and
those of a partial re-run of the changed codec (``NEW``: some images, some settings), replaces
the old points by the new ones where both exist, and prints each image's BD-rate against the
anchor (from ``OLD``) before and after, then the BD-rate of the mean curves over all the
images (the benchmark's headline figure), before and after.

    PYTHONPATH=src python scripts/bench_delta.py docs/bench/kodak/results.jsonl.gz \\
        docs/bench/ttq/kodak4-s15.jsonl --codec nm --anchor avif-444-psnr-s1
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

from neural_memory.bench.bdrate import bd_rate
from neural_memory.bench.results import read_jsonl
from neural_memory.bench.summary import LOSSY, aggregate, curve, per_image_bd


def load(path: Path) -> list[dict]:
    if path.suffix != ".gz":
        return read_jsonl(path)
    with gzip.open(path, "rt") as f:
        return [json.loads(line) for line in f if line.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old", type=Path, help="results.jsonl(.gz) of the full run")
    ap.add_argument("new", type=Path, help="results.jsonl of the partial re-run")
    ap.add_argument("--codec", default="nm")
    ap.add_argument("--anchor", default="avif-444-psnr-s1")
    args = ap.parse_args()
    codecs = (args.codec, args.anchor)
    old = [r for r in load(args.old) if r["codec"] in codecs]
    new = [r for r in load(args.new) if r["codec"] == args.codec]
    replaced = {(r["image"], r["setting"]) for r in new}
    after = [
        r for r in old if r["codec"] != args.codec or (r["image"], r["setting"]) not in replaced
    ]
    aggs = {args.codec: {"mode": LOSSY, "ours": True}, args.anchor: {"mode": LOSSY, "ours": False}}
    bd0 = per_image_bd(old, aggs)[args.codec][args.anchor]
    bd1 = per_image_bd(after + new, aggs)[args.codec][args.anchor]
    changes = []
    for image in sorted({r["image"] for r in new}):
        b0, b1 = bd0.get(image), bd1.get(image)
        if b0 is None or b1 is None:
            print(f"{image}: n/a (curves do not overlap)")
            continue
        changes.append(b1 - b0)
        print(f"{image}: {b0:+.1f} % -> {b1:+.1f} % ({b1 - b0:+.1f} points) against {args.anchor}")
    if changes:
        print(f"mean change {sum(changes) / len(changes):+.2f} points over {len(changes)} images")
    images = sorted({r["image"] for r in old})
    for name, recs in (("before", old), ("after", after + new)):
        aggs = aggregate(recs, images)
        bd = bd_rate(*curve(aggs[args.anchor]), *curve(aggs[args.codec]))
        text = "n/a" if bd is None else f"{bd:+.1f} %"
        print(f"mean curves over {len(images)} images, {name}: {text} against {args.anchor}")


if __name__ == "__main__":
    main()
