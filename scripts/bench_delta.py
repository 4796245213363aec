"""Per-image BD-rate change of a codec between two benchmark runs, against an anchor codec.

Why: re-running a whole benchmark to check an encoder change on a few images costs hours;
this takes the records of a full run (``OLD``, e.g. docs/bench/kodak/results.jsonl.gz) and
those of a partial re-run of the changed codec (``NEW``: some images, some settings), replaces
the old points by the new ones where both exist, and prints each image's BD-rate against the
anchor (from ``OLD``) before and after.

    PYTHONPATH=src python scripts/bench_delta.py docs/bench/kodak/results.jsonl.gz \\
        docs/bench/ttq/kodak4-s15.jsonl --codec nm --anchor avif-444-psnr-s1
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

from neural_memory.bench.bdrate import bd_rate


def load(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:
        return [json.loads(line) for line in f if line.strip()]


def curve(records: list[dict], image: str, codec: str) -> dict[float, tuple[float, float]]:
    """{setting: (bpp, psnr)} of one codec on one image (successful records)."""
    return {
        r["setting"]: (r["bpp"], r["psnr"])
        for r in records
        if r["image"] == image and r["codec"] == codec and r.get("status") == "ok"
    }


def bd(anchor: dict, test: dict) -> float | None:
    a, t = sorted(anchor.values()), sorted(test.values())
    return bd_rate([p[0] for p in a], [p[1] for p in a], [p[0] for p in t], [p[1] for p in t])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old", type=Path, help="results.jsonl(.gz) of the full run")
    ap.add_argument("new", type=Path, help="results.jsonl of the partial re-run")
    ap.add_argument("--codec", default="nm")
    ap.add_argument("--anchor", default="avif-444-psnr-s1")
    args = ap.parse_args()
    old, new = load(args.old), load(args.new)
    images = sorted({r["image"] for r in new if r["codec"] == args.codec})
    changes = []
    for image in images:
        anchor = curve(old, image, args.anchor)
        before = curve(old, image, args.codec)
        after = {**before, **curve(new, image, args.codec)}
        b0, b1 = bd(anchor, before), bd(anchor, after)
        if b0 is None or b1 is None:
            print(f"{image}: n/a (curves do not overlap)")
            continue
        changes.append(b1 - b0)
        print(f"{image}: {b0:+.1f} % -> {b1:+.1f} % ({b1 - b0:+.1f} points) against {args.anchor}")
    if changes:
        print(f"mean change {sum(changes) / len(changes):+.2f} points over {len(changes)} images")


if __name__ == "__main__":
    main()
