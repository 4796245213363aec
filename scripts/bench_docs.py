"""Build docs/BENCHMARKS.md (and docs/bench/*/ plots) from finished benchmark runs.

Usage::

    python scripts/bench_docs.py bench-results/kodak bench-results/cid22

Each argument is the --out folder of a ``neural-memory bench`` run.  The Kodak run is
also checked against figures measured independently on the development machine with the
same libraries (see REFERENCE below): a gap over 2 % in rate or 0.1 dB is flagged.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
from pathlib import Path

from neural_memory.bench.anchors import looks_like_kodak
from neural_memory.bench.report import render_markdown
from neural_memory.bench.results import BenchResults
from neural_memory.bench.summary import summary

ROOT = Path(__file__).resolve().parent.parent

#: (description, codec, kind, value): kind "psnr@0.5" (dB at 0.5 bpp) or "bpsp"/"bpsp@k".
REFERENCE = [
    ("WebP, PSNR at 0.5 bpp", "webp", "psnr@0.5", 31.47),
    ("AVIF 4:4:4 tune=psnr speed 1, PSNR at 0.5 bpp", "avif-444-psnr-s1", "psnr@0.5", 33.44),
    ("JPEG XL lossless e7", "jxl-ll-e7", "bpsp", 2.90),
    ("WebP lossless", "webp-ll", "bpsp", 3.17),
    ("JPEG-LS NEAR=2", "jpegls-near", "bpsp@2", 2.30),
]


def reference_checks(summ: dict) -> str:
    """Markdown table comparing measured Kodak figures with the reference values."""
    rows = []
    for desc, codec, kind, ref in REFERENCE:
        agg = summ["aggregates"].get(codec)
        measured = None
        if agg is not None:
            if kind == "psnr@0.5":
                measured = summ["psnr_at_bpp"].get(codec, {}).get("0.5")
            elif kind == "bpsp":
                measured = agg["points"][0]["bpsp"]
            else:
                k = int(kind.split("@")[1])
                measured = next((p["bpsp"] for p in agg["points"] if p["setting"] == k), None)
        if measured is None:
            rows.append(f"| {desc} | {ref} | not measured | |")
            continue
        if kind.startswith("psnr"):
            gap = measured - ref
            ok = abs(gap) <= 0.1
            rows.append(
                f"| {desc} | {ref:.2f} dB | {measured:.2f} dB | {gap:+.2f} dB "
                f"{'ok' if ok else '**CHECK**'} |"
            )
        else:
            gap = (measured / ref - 1) * 100
            ok = abs(gap) <= 2
            rows.append(
                f"| {desc} | {ref:.2f} bpsp | {measured:.3f} bpsp | {gap:+.1f} % "
                f"{'ok' if ok else '**CHECK**'} |"
            )
    head = "| figure | reference | measured | gap |\n|---|---|---|---|"
    return head + "\n" + "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("runs", nargs="+", type=Path, help="bench output folders")
    ap.add_argument("--docs", type=Path, default=ROOT / "docs")
    ap.add_argument(
        "--intro",
        type=Path,
        action="append",
        default=[],
        help="Markdown placed before the reports (repeatable, kept in order)",
    )
    args = ap.parse_args()

    parts = [
        "# Benchmarks",
        "",
        "Produced by `neural-memory bench` (package `neural_memory.bench`); regenerate this "
        "file with `python scripts/bench_docs.py --intro docs/bench/ours.md --intro "
        "docs/bench/intro.md RUN_DIR...` (see How to run). Plots are in `docs/bench/`.",
        "",
    ]
    for intro in args.intro:
        parts += [intro.read_text(), ""]
    for run in args.runs:
        results = BenchResults.load(run)
        summ = summary(results)
        name = run.name
        dest = args.docs / "bench" / name
        dest.mkdir(parents=True, exist_ok=True)
        for png in ("rd_psnr.png", "rd_msssim.png", "rd_psnr_published.png", "crops.png"):
            if (run / png).exists():
                shutil.copy2(run / png, dest / png)
        # Keep the repository light: dataset-level numbers as JSON, per-item records gzipped.
        full = json.loads((run / "results.json").read_text())
        full.pop("records", None)
        (dest / "summary.json").write_text(json.dumps(full, indent=1))
        with (
            open(run / "results.jsonl", "rb") as src,
            gzip.open(dest / "results.jsonl.gz", "wb") as gz,
        ):
            shutil.copyfileobj(src, gz)
        text = render_markdown(results, summ, image_prefix=f"bench/{name}/", heading_level=2)
        # The reference figures are means over the 24 Kodak images: check full runs only.
        if looks_like_kodak([Path(i) for i in results.images]):
            check = (
                "### Check against reference figures\n\n"
                "Measured independently on this machine with the same libraries; a gap "
                "over 2 % in rate or 0.1 dB would point at a wrong setting.\n\n"
                + reference_checks(summ)
                + "\n"
            )
            lines = text.split("\n")
            at = next((i for i, ln in enumerate(lines) if ln.startswith("### Lossy")), 1)
            text = "\n".join([*lines[:at], check, *lines[at:]])
        parts += [text, ""]
    (args.docs / "BENCHMARKS.md").write_text("\n".join(parts))
    print(f"wrote {args.docs / 'BENCHMARKS.md'}")


if __name__ == "__main__":
    main()
