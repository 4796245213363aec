"""Benchmark suite: our codec against the codecs people would pick instead.

Entry points:

* :func:`add_bench_arguments` / :func:`run_bench` for the ``neural-memory bench`` CLI;
* :func:`run_benchmark` with a :class:`BenchConfig` for scripts and tests;
* ``python -m neural_memory.bench IMAGES_DIR ...`` runs the same CLI standalone.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from neural_memory.options import DEFAULT_PRESET, PRESETS

from .config import DEFAULT_BPP_POINTS, BenchConfig
from .results import BenchResults
from .runner import run_benchmark

__all__ = ["BenchConfig", "BenchResults", "add_bench_arguments", "run_bench", "run_benchmark"]


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _setting_override(text: str) -> tuple[str, list[float | int]]:
    name, _, values = text.partition("=")
    if not values:
        raise argparse.ArgumentTypeError("expected CODEC=V1,V2,...")
    parsed = [int(v) if v.strip().lstrip("-").isdigit() else float(v) for v in values.split(",")]
    return name.strip(), parsed


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """Add every ``bench`` option to ``parser`` (a subparser of the main CLI)."""
    parser.add_argument(
        "images_dir", type=Path, nargs="?", help="folder of RGB images (PNG, PPM, ...)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("bench-results"),
        help="output folder (default: %(default)s)",
    )
    parser.add_argument(
        "--codecs",
        type=_names,
        default=["all"],
        help="comma list of codec names or globs, or groups: all, classic, ours, lossy, "
        "lossless, near-lossless (default: all). See --list-codecs.",
    )
    parser.add_argument("--exclude", type=_names, default=[], help="codecs (globs) to leave out")
    parser.add_argument("--list-codecs", action="store_true", help="list codecs and exit")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N images")
    parser.add_argument(
        "--images",
        type=_names,
        default=None,
        metavar="NAMES",
        help="comma list of image names to use (with or without extension), e.g. "
        "kodim01,kodim07,kodim14,kodim23",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="parallel worker processes (default: cores = %(default)s; 0 = in-process, "
        "no memory measurement)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="keep finished items of OUT/results.jsonl"
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rebuild report, JSON and plots from OUT/results.jsonl without measuring (only the "
        "crop figure encodes each lossy codec once more, unless OUT/crops/ holds its decoded "
        "crop)",
    )
    parser.add_argument(
        "--lambdas",
        type=_floats,
        default=None,
        help="rate points of our lossy codec, e.g. 0.001,0.004",
    )
    parser.add_argument(
        "--near",
        type=_ints,
        default=None,
        help="k values for near-lossless codecs (default 1,2,3,4)",
    )
    parser.add_argument(
        "--settings",
        type=_setting_override,
        action="append",
        default=[],
        metavar="CODEC=V1,V2",
        help="override the settings swept for one codec (repeatable)",
    )
    parser.add_argument(
        "--bpp-points",
        type=_floats,
        default=list(DEFAULT_BPP_POINTS),
        help="rates for the PSNR-at-bpp table (default: %(default)s)",
    )
    parser.add_argument(
        "--anchors",
        choices=("auto", "kodak", "none"),
        default="auto",
        help="published Kodak curves as BD-rate anchors (auto: when the folder is Kodak)",
    )
    parser.add_argument("--no-plots", action="store_true", help="skip the matplotlib figures")
    parser.add_argument(
        "--html",
        action="store_true",
        help="also write report.html: one self-contained page with the tables, RD plots and "
        "an original/decoded slider",
    )
    parser.add_argument("--crop-bpp", type=float, default=0.5, help="rate of the crop figure")
    parser.add_argument("--crop-image", default=None, help="image file name for the crop figure")
    parser.add_argument("--title", default=None, help="report title")
    parser.add_argument(
        "--preset", choices=PRESETS, default=DEFAULT_PRESET, help="preset of our lossy codec"
    )
    parser.add_argument("--device", default="cpu", help="device passed to our codec")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    """Translate parsed CLI arguments into a :class:`BenchConfig`."""
    return BenchConfig(
        images_dir=args.images_dir,
        out_dir=args.out,
        codecs=args.codecs,
        exclude=args.exclude,
        limit=args.limit,
        images=args.images,
        jobs=args.jobs,
        resume=args.resume,
        lambdas=args.lambdas,
        near=args.near,
        settings=dict(args.settings),
        bpp_points=tuple(args.bpp_points),
        anchors=args.anchors,
        plots=not args.no_plots,
        html=args.html,
        crop_bpp=args.crop_bpp,
        crop_image=args.crop_image,
        title=args.title,
        preset=args.preset,
        device=args.device,
        progress=not args.no_progress,
        report_only=args.report_only,
        command="neural-memory bench " + shlex.join(sys.argv[1:])
        if "bench" not in sys.argv[1:2]
        else "neural-memory " + shlex.join(sys.argv[1:]),
    )


def _list_codecs() -> None:
    from .codecs import all_codecs

    for spec in all_codecs():
        reason = spec.unavailable()
        state = "ok" if reason is None else f"unavailable: {reason}"
        print(f"{spec.name:18s} {spec.mode:13s} {spec.label:32s} [{state}]")


def run_bench(args: argparse.Namespace) -> int:
    """Run the benchmark from parsed CLI arguments; returns the process exit code."""
    if getattr(args, "list_codecs", False):
        _list_codecs()
        return 0
    if args.images_dir is None:
        print("bench: IMAGES_DIR is required (unless --list-codecs)", file=sys.stderr)
        return 2
    config = config_from_args(args)
    try:
        results = run_benchmark(config)
    except (FileNotFoundError, KeyError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    out = Path(config.out_dir)
    print(f"wrote {out / 'report.md'}, {out / 'results.json'} ({len(results.ok())} items ok)")
    failed = [r for r in results.records if r.get("status") == "error"]
    bad = [r for r in results.ok() if r.get("exact") is False or r.get("within_bound") is False]
    if failed or bad:
        print(f"bench: {len(failed)} failed item(s), {len(bad)} check failure(s)", file=sys.stderr)
        return 1
    return 0
