"""The ``neural-memory`` command line: encode, decode, info, demo, bench.

Every error a user can cause ends as one line on stderr and exit status 1 (2 for bad
command-line usage, 130 for Ctrl-C); a traceback appears only with ``--debug``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from neural_memory import __version__
from neural_memory.api import decode_file, encode_file, read_info, read_nmem
from neural_memory.container import FORMAT_VERSION
from neural_memory.errors import NeuralMemoryError, OptionError
from neural_memory.options import (
    DEFAULT_MAX_DECODE_PIXELS,
    DEFAULT_PRESET,
    LOSSLESS,
    LOSSY,
    NEAR_LOSSLESS,
    PRESET_STEPS,
    PRESETS,
    DecodeOptions,
    EncodeOptions,
)
from neural_memory.progress import progress_bar

EXAMPLES = """\
examples:
  neural-memory encode photo.png                      lossy, default preset -> photo.nmem
  neural-memory encode photo.png --bpp 0.5 -o p.nmem  aim at 0.5 bits per pixel
  neural-memory encode photo.png --psnr 35            aim at 35 dB PSNR
  neural-memory encode scan.tif --lossless            bit-exact
  neural-memory encode scan.tif --near-lossless 2     every sample within +-2
  neural-memory decode photo.nmem -o photo.png        rebuild the image
  neural-memory decode photo.nmem --scale 2           render at twice the size (lossy)
  neural-memory info photo.nmem                       header and section sizes
  neural-memory inpaint photo.png --mask m.png -o f.png  fill the pixels marked in m.png
  neural-memory demo                                  the whole job on a bundled photo
"""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser. The ``inpaint`` and ``bench`` sub-parsers come from their packages
    (PyTorch, SciPy, matplotlib behind them), so they are imported only when ``command``
    names them; otherwise those commands appear with their help line only."""
    parser = argparse.ArgumentParser(
        prog="neural-memory",
        description="Store images as small neural networks, and rebuild them from the network.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"neural-memory {__version__} (file format version {FORMAT_VERSION})",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_encode(commands)
    _add_decode(commands)
    _add_info(commands)
    _add_demo(commands)
    _add_inpaint(commands, full=command == "inpaint")
    _add_bench(commands, full=command == "bench")
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    """The sub-command an argument list runs (top-level options take no values)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def _add_stub(commands, name: str, help_text: str) -> None:
    p = commands.add_parser(name, help=help_text, add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)


def _add_encode(commands) -> None:
    p = commands.add_parser(
        "encode",
        help="compress an image into a .nmem file",
        description=(
            "Fit a small neural representation to an image and store it as a .nmem file. "
            "Lossy by default (rate set by --lambda, --bpp or --psnr); --lossless and "
            "--near-lossless K use an online-learning predictive coder instead."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="image files (PNG, TIFF, BMP, JPEG, WebP, ...), globs or folders",
    )
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        help="output file; for several inputs an output folder that mirrors the input tree "
        "(default: beside each input, with .nmem)",
    )
    p.add_argument("-f", "--force", action="store_true", help="overwrite an existing output")
    _add_batch_options(p)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--lossless", action="store_true", help="bit-exact coding")
    mode.add_argument(
        "--near-lossless",
        type=int,
        metavar="K",
        help="every sample within +-K of the original (K >= 1)",
    )
    rate = p.add_mutually_exclusive_group()
    rate.add_argument(
        "--lambda",
        dest="lmbda",
        type=float,
        metavar="L",
        help="rate-distortion trade-off: larger is smaller and blurrier (lossy)",
    )
    rate.add_argument("--bpp", type=float, help="target size in bits per pixel (lossy)")
    rate.add_argument("--psnr", type=float, help="target quality in dB (lossy)")
    p.add_argument(
        "--preset",
        choices=PRESETS,
        default=DEFAULT_PRESET,
        help=f"encoder effort (lossy): training steps {_preset_steps()}; encode time grows"
        " with the steps (measured times: README.md, docs/BENCHMARKS.md)"
        " (default: %(default)s)",
    )
    p.add_argument(
        "--steps",
        type=int,
        metavar="N",
        help="training steps (lossy), overriding the preset's: fewer is faster and worse",
    )
    p.add_argument(
        "--device", default="cpu", help="torch device for lossy encoding, e.g. cuda (default: cpu)"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--threads", type=int, help="CPU threads for training (default: all cores)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(run=_run_encode)


def _preset_steps() -> str:
    return ", ".join(f"{name} {steps}" for name, steps in PRESET_STEPS.items())


def _add_decode(commands) -> None:
    p = commands.add_parser(
        "decode",
        help="rebuild an image from a .nmem file",
        description="Rebuild the image stored in a .nmem file. The format follows the "
        "output's extension (.png by default; 16-bit colour needs .png or .tiff).",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help=".nmem files, globs or folders")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        help="output image; for several inputs an output folder (default: beside each input)",
    )
    p.add_argument("-f", "--force", action="store_true", help="overwrite an existing output")
    p.add_argument(
        "--format",
        default="png",
        help="image format of batch outputs, as an extension (default: %(default)s)",
    )
    _add_batch_options(p)
    size = p.add_mutually_exclusive_group()
    size.add_argument("--size", type=_parse_size, metavar="WxH", help="render at this size (lossy)")
    size.add_argument("--scale", type=float, help="render at this scale, e.g. 2 or 0.5 (lossy)")
    p.add_argument(
        "--max-pixels",
        type=int,
        metavar="N",
        help="refuse images (stored or rendered) of more than N pixels "
        f"(default {DEFAULT_MAX_DECODE_PIXELS}, i.e. 8192x8192)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no summary line")
    p.set_defaults(run=_run_decode)


def _add_batch_options(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group(
        "batches",
        "With several inputs (or a glob or folder), files run in parallel, a failed file is "
        "reported without stopping the rest, and outputs that already exist are skipped, so "
        "re-running an interrupted batch resumes it (--force redoes them).",
    )
    group.add_argument(
        "-j", "--jobs", type=int, help="parallel worker processes (default: one per core)"
    )
    group.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="run the batch on a Dask cluster, e.g. tcp://scheduler:8786 (needs [cluster])",
    )


def _is_batch(args: argparse.Namespace) -> bool:
    if len(args.inputs) > 1 or args.cluster:
        return True
    item = args.inputs[0]
    return any(ch in item for ch in "*?[") or Path(item).is_dir()


def _run_batch(
    args: argparse.Namespace, work, options: EncodeOptions | DecodeOptions, suffixes, new_suffix
) -> int:
    from neural_memory.batch import format_summary, plan, run_batch

    if args.jobs is not None and args.jobs < 1:
        raise OptionError("--jobs must be at least 1")
    if args.output is not None and args.output.exists() and not args.output.is_dir():
        raise OptionError(f"for several inputs, --output must be a folder: {args.output}")
    jobs = plan(args.inputs, args.output, suffixes=suffixes, new_suffix=new_suffix)
    if not jobs:
        raise OptionError("no input files found")
    with progress_bar(f"{len(jobs)} files", disable=args.quiet) as progress:
        summary = run_batch(
            jobs,
            work,
            options,
            force=args.force,
            workers=args.jobs,
            cluster=args.cluster,
            progress=progress,
        )
    if not args.quiet:
        print(format_summary(summary))
    else:
        for result in summary.results:
            if result.status == "failed":
                print(f"neural-memory: error: {result.source}: {result.error}", file=sys.stderr)
    return 0 if summary.ok else 1


def _add_info(commands) -> None:
    p = commands.add_parser(
        "info",
        help="show the header and section sizes of .nmem files",
        description="Print each file's mode, size, bit depth and the bytes of every section. "
        "The checksum is verified; nothing is decoded.",
    )
    p.add_argument("inputs", type=Path, nargs="+", help=".nmem files")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=_run_info)


def _add_demo(commands) -> None:
    p = commands.add_parser(
        "demo",
        help="encode and decode a bundled photo, print size, quality and time",
        description="Runs the main job end to end on a bundled sample photo: lossy and "
        "lossless encode, decode, and a comparison with PNG and JPEG of the same image.",
    )
    p.add_argument(
        "--outdir", type=Path, default=Path("neural-memory-demo"), help="where outputs go"
    )
    p.add_argument("--preset", choices=PRESETS, default="fast", help="lossy preset")
    p.add_argument(
        "--steps",
        type=int,
        metavar="N",
        help="training steps of both lossy encodes, overriding the presets (a quick look)",
    )
    p.add_argument("--device", default="cpu", help="torch device for lossy encoding")
    p.set_defaults(run=_run_demo)


def _add_inpaint(commands, full: bool) -> None:
    help_text = "fill in missing or damaged pixels marked by a mask"
    if not full:
        _add_stub(commands, "inpaint", help_text)
        return
    from neural_memory.reconstruct.command import add_inpaint_arguments, run_inpaint

    p = commands.add_parser(
        "inpaint",
        help=help_text,
        description="Fit a representation to the known pixels of an image only, and let it "
        "answer for the pixels the mask marks as unknown (nonzero mask pixels). Needs the "
        "[lossy] extra (PyTorch).",
    )
    add_inpaint_arguments(p)
    p.set_defaults(run=run_inpaint)


def _add_bench(commands, full: bool) -> None:
    help_text = "benchmark against classic codecs: tables, RD plots, crops"
    if not full:
        _add_stub(commands, "bench", help_text)
        return
    try:
        from neural_memory.bench import add_bench_arguments, run_bench
    except ImportError as exc:  # the bench extra (matplotlib, scipy) is not installed
        reason = str(exc)
        p = commands.add_parser("bench", help="benchmark against classic codecs (needs [bench])")
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(run=lambda args: _missing_bench(reason))
        return
    p = commands.add_parser(
        "bench",
        help=help_text,
        description="Measure neural-memory and the classic codecs on the same images in one "
        "run; write JSON results, a Markdown report and plots.",
    )
    add_bench_arguments(p)
    p.set_defaults(run=run_bench)


def _missing_bench(reason: str) -> int:
    raise NeuralMemoryError(
        f"the benchmark needs extra packages ({reason}): pip install 'neural-memory[bench]'"
    )


def _parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected WIDTHxHEIGHT, e.g. 1536x1024, got {text!r}"
        ) from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return width, height


def _encode_options(args: argparse.Namespace) -> EncodeOptions:
    """The flags as :class:`EncodeOptions`; lossy-only flags with another mode are refused
    there (``--preset``, ``--device``, ``--seed`` and ``--threads`` have defaults, so they
    are passed in lossy mode only)."""
    mode = LOSSLESS if args.lossless else LOSSY
    if args.near_lossless is not None:
        mode = NEAR_LOSSLESS
    lossy = {}
    if mode == LOSSY:
        lossy = dict(preset=args.preset, device=args.device, seed=args.seed, threads=args.threads)
    return EncodeOptions(
        mode=mode,
        near=args.near_lossless or 0,
        lmbda=args.lmbda,
        bpp=args.bpp,
        psnr=args.psnr,
        steps=args.steps,
        **lossy,
    )


def _run_encode(args: argparse.Namespace) -> int:
    options = _encode_options(args)
    if _is_batch(args):
        from neural_memory.batch import IMAGE_SUFFIXES, encode_job

        return _run_batch(args, encode_job, options, IMAGE_SUFFIXES, ".nmem")
    source = Path(args.inputs[0])
    output = args.output or source.with_suffix(".nmem")
    with progress_bar(f"encoding {source.name}", disable=args.quiet) as progress:
        report = encode_file(source, output, force=args.force, options=options, progress=progress)
    if not args.quiet:
        print(_encode_summary(report))
    return 0


def _encode_summary(report) -> str:
    size = f"{report.width}x{report.height}x{report.channels}"
    if report.mode == "lossy":
        quality = f"{report.bpp:.3f} bpp, PSNR {report.psnr:.2f} dB"
    elif report.mode == "lossless":
        quality = f"{report.bpsp:.3f} bpsp, exact"
    else:
        quality = f"{report.bpsp:.3f} bpsp, max error {report.max_error}"
    return (
        f"{report.source} -> {report.output}: {size}, {report.mode}, "
        f"{report.output_bytes:,} bytes ({report.input_bytes / report.output_bytes:.1f}x "
        f"smaller than the input), {quality}, {report.seconds:.1f} s"
    )


def _run_decode(args: argparse.Namespace) -> int:
    if _is_batch(args):
        from neural_memory.batch import NMEM_SUFFIXES, decode_job

        options = DecodeOptions(size=args.size, scale=args.scale, max_pixels=args.max_pixels)
        return _run_batch(args, decode_job, options, NMEM_SUFFIXES, "." + args.format.lstrip("."))
    source = Path(args.inputs[0])
    output = args.output or source.with_suffix(".png")
    start = time.perf_counter()
    pixels = decode_file(
        source,
        output,
        force=args.force,
        size=args.size,
        scale=args.scale,
        max_pixels=args.max_pixels,
    )
    if not args.quiet:
        height, width, channels = pixels.shape
        print(
            f"{source} -> {output}: {width}x{height}x{channels}, "
            f"{time.perf_counter() - start:.2f} s"
        )
    return 0


def _run_info(args: argparse.Namespace) -> int:
    infos = []
    for path in args.inputs:
        info = read_info(read_nmem(path))
        infos.append((path, info))
    if args.json:
        print(
            json.dumps(
                [
                    dict(file=str(path), **info.__dict__, bpp=info.bpp, bpsp=info.bpsp)
                    for path, info in infos
                ],
                indent=2,
            )
        )
        return 0
    for path, info in infos:
        mode = f"{info.mode} (k={info.near})" if info.mode == "near-lossless" else info.mode
        print(f"{path}: neural-memory format v{info.version}, {mode}")
        print(
            f"  image    {info.width}x{info.height}, {info.channels} channel(s), "
            f"{info.bit_depth}-bit"
        )
        print(f"  size     {info.file_bytes:,} bytes, {info.bpp:.4f} bpp, {info.bpsp:.4f} bpsp")
        for tag, length in info.sections.items():
            print(f"  section  {tag}  {length:>10,} bytes")
    return 0


def _run_demo(args: argparse.Namespace) -> int:
    from neural_memory.demo import run_demo

    return run_demo(args.outdir, preset=args.preset, device=args.device, steps=args.steps)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command_of(argv))
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except NeuralMemoryError as exc:
        if args.debug:
            raise
        print(f"neural-memory: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("neural-memory: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("neural-memory: error: out of memory", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug: still one line, with the way to get details
        if args.debug:
            raise
        print(
            f"neural-memory: internal error: {type(exc).__name__}: {exc} "
            "(run with --debug for the traceback and please report it)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
