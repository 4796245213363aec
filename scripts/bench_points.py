"""Each point of a codec against an anchor on the same image: the rate difference at equal PSNR.

Why: a BD-rate averages over the PSNR range two curves share, so it hides where along the
curve a codec wins or loses (CLIC 2025, session 22: -12.8 % on the mean curves, while one
photograph was behind AVIF at three of its four rates). For every point of ``--codec`` this
prints the anchor's rate at that point's PSNR on the same image (the PCHIP interpolation of
log-rate that the BD-rate integrates; "n/a" outside the anchor's range) and the difference,
then per setting the mean difference and how many points are below the anchor.

    PYTHONPATH=src:scripts python scripts/bench_points.py docs/bench/clic2025/results.jsonl.gz
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from pathlib import Path

from bench_delta import load

from neural_memory.bench.bdrate import rate_at_quality


def point_gaps(records: list[dict], codec: str, anchor: str) -> list[tuple[dict, float | None]]:
    """(record of ``codec``, its rate difference in % against ``anchor``) for every point."""
    ok = [r for r in records if r.get("status") == "ok"]
    curves: dict[str, list[dict]] = defaultdict(list)
    for r in ok:
        if r["codec"] == anchor:
            curves[r["image"]].append(r)
    gaps = []
    for r in sorted(
        (r for r in ok if r["codec"] == codec), key=lambda r: (r["setting"], r["image"])
    ):
        pts = curves.get(r["image"], [])
        at = rate_at_quality([p["bpp"] for p in pts], [p["psnr"] for p in pts], r["psnr"])
        gaps.append((r, None if at is None else 100.0 * (r["bpp"] / at - 1.0)))
    return gaps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", type=Path, help="results.jsonl(.gz) of a benchmark run")
    ap.add_argument("--codec", default="nm")
    ap.add_argument("--anchor", default="avif-444-psnr-s1")
    args = ap.parse_args()
    by_setting: dict[object, list[float]] = defaultdict(list)
    for r, gap in point_gaps(load(args.results), args.codec, args.anchor):
        text = "n/a" if gap is None else f"{gap:+.1f} %"
        print(f"{r['image']} {r['setting']}: {r['bpp']:.4f} bpp, {r['psnr']:.2f} dB: {text}")
        if gap is not None:
            by_setting[r["setting"]].append(gap)
    for setting, gaps in by_setting.items():
        below = sum(g < 0 for g in gaps)
        print(f"setting {setting}: mean {statistics.fmean(gaps):+.1f} %, {below} of {len(gaps)} "
              f"points below {args.anchor}")  # fmt: skip


if __name__ == "__main__":
    main()
