"""The ``neural-memory`` command line: encode, decode, info, demo, bench.

Every error a user can cause ends as one line on stderr and exit status 1 (2 for bad
command-line usage, 130 for Ctrl-C, 141 when the reader of stdout has gone, e.g. ``| head``);
a traceback appears only with ``--debug``. Option values are checked before anything slow
starts (no PyTorch import, no image read), and so is the output folder.

Conventions of cwebp / cjxl / avifenc: ``-q / --quality`` 0-100, ``-e / --effort``, ``-v``,
``--quiet``, ``--json``, ``-`` for standard input or output, ``--strip`` for metadata.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from neural_memory import __version__
from neural_memory.api import decode_file, encode_file, read_info, read_nmem
from neural_memory.atomic import check_output_path, check_writable
from neural_memory.container import FORMAT_VERSION
from neural_memory.errors import NeuralMemoryError, OptionError
from neural_memory.images import check_output_format, output_quality_note
from neural_memory.options import (
    DEFAULT_MAX_DECODE_PIXELS,
    DEFAULT_PRESET,
    LOSSLESS,
    LOSSY,
    NEAR_LOSSLESS,
    PRESET_STEPS,
    PRESETS,
    QUALITY_LAMBDA,
    DecodeOptions,
    EncodeOptions,
    preset_for_effort,
)
from neural_memory.progress import progress_bar

EXAMPLES = """\
examples:
  neural-memory encode photo.png                      lossy, default preset -> photo.nmem
  neural-memory encode photo.png -q 80                quality 0-100 (as cwebp, cjxl)
  neural-memory encode photo.png --bpp 0.5 -o p.nmem  aim at 0.5 bits per pixel
  neural-memory encode photo.png --psnr 35            aim at 35 dB PSNR
  neural-memory encode scan.tif --lossless            bit-exact
  neural-memory encode scan.tif --near-lossless 2     every sample within +-2
  neural-memory decode photo.nmem -o photo.png        rebuild the image
  neural-memory decode photo.nmem --scale 2           render at twice the size (lossy)
  cat x.png | neural-memory encode - -o - | neural-memory decode - -o y.png   pipes
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
        help="output file, - for standard output; for several inputs an output folder that "
        "mirrors the input tree (default: beside each input, with .nmem)",
    )
    p.add_argument("-f", "--force", action="store_true", help="overwrite an existing output")
    p.add_argument("--strip", action="store_true", help="drop the ICC colour profile, EXIF and XMP")
    p.add_argument(
        "--frame",
        type=int,
        metavar="N",
        help="encode frame N (from 0) of an animation or multi-page file (refused without)",
    )
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
    rate.add_argument(
        "-q",
        "--quality",
        type=float,
        metavar="Q",
        help="quality 0-100 (lossy): a lambda from {:g} at 0 to {:g} at 100, log-linear; "
        "larger is bigger and better".format(*QUALITY_LAMBDA),
    )
    effort = p.add_mutually_exclusive_group()
    effort.add_argument(
        "-e",
        "--effort",
        type=int,
        metavar="E",
        help="encoder effort 1-10 as in cjxl (lossy): 1-3 fast, 4-7 default, 8-10 slow",
    )
    effort.add_argument(
        "--preset",
        choices=PRESETS,
        default=None,
        help=f"encoder effort (lossy): training steps {_preset_steps()}; encode time grows"
        " with the steps (measured times: README.md, docs/BENCHMARKS.md)"
        f" (default: {DEFAULT_PRESET})",
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
    _add_output_style(p)
    p.set_defaults(run=_run_encode)


def _add_output_style(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress bar, summary or notes")
    p.add_argument(
        "-v", "--verbose", action="count", default=0, help="say more (options, section sizes)"
    )
    p.add_argument(
        "--json", action="store_true", help="print the summary as JSON (on stderr with -o -)"
    )


def _preset_steps() -> str:
    steps = ", ".join(f"{name} {steps}" for name, steps in PRESET_STEPS.items())
    return f"{steps} (scaled at low rates to take about the same time)"


def _add_decode(commands) -> None:
    p = commands.add_parser(
        "decode",
        help="rebuild an image from a .nmem file",
        description="Rebuild the image stored in a .nmem file. The format follows the "
        "output's extension (.png by default; 16-bit colour needs .png, .tiff or .jxl).",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help=".nmem files, globs or folders")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        help="output image, - for standard output; for several inputs an output folder "
        "(default: beside each input)",
    )
    p.add_argument("-f", "--force", action="store_true", help="overwrite an existing output")
    p.add_argument(
        "--format",
        help="output image format as an extension: png, tiff, webp, jpg, avif, jxl ... "
        "(default: the output's extension, else png)",
    )
    p.add_argument(
        "-q",
        "--quality",
        type=int,
        metavar="Q",
        help="quality 0-100 of a lossy output format (jpg, avif; webp is lossless without "
        "it, jxl too); default 95, with a note",
    )
    p.add_argument("--strip", action="store_true", help="write no ICC colour profile, EXIF or XMP")
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
    _add_output_style(p)
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
    if item == "-":
        return False
    return any(ch in item for ch in "*?[") or Path(item).is_dir()


def _run_batch(
    args: argparse.Namespace, work, options: EncodeOptions | DecodeOptions, suffixes, new_suffix
) -> int:
    from neural_memory.batch import format_summary, plan, run_batch, summary_json

    if "-" in args.inputs or str(args.output) == "-":
        raise OptionError("- (standard input or output) works for a single file only")
    if args.jobs is not None and args.jobs < 1:
        raise OptionError("--jobs must be at least 1")
    if args.output is not None and args.output.exists() and not args.output.is_dir():
        raise OptionError(f"for several inputs, --output must be a folder: {args.output}")
    jobs = plan(args.inputs, args.output, suffixes=suffixes, new_suffix=new_suffix)
    if not jobs:
        raise OptionError("no input files found")
    for folder in sorted({_nearest_folder(job.output.parent) for job in jobs}):
        check_writable(folder)
    quiet = args.quiet or args.json
    with progress_bar(f"{len(jobs)} files", disable=quiet) as progress:
        summary = run_batch(
            jobs,
            work,
            options,
            force=args.force,
            workers=args.jobs,
            cluster=args.cluster,
            progress=progress,
        )
    if args.json:
        print(json.dumps(summary_json(summary), indent=2))
    elif not args.quiet:
        print(format_summary(summary))
    else:
        for result in summary.results:
            if result.status == "failed":
                print(f"neural-memory: error: {result.source}: {result.error}", file=sys.stderr)
    return 0 if summary.ok else 1


def _nearest_folder(path: Path) -> Path:
    """The nearest folder of ``path`` that exists (batch outputs create the rest)."""
    path = path if str(path) else Path(".")
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


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
        "lossless encode, decode, a comparison with JPEG and WebP at the same file size, then "
        "the 96x96 memory demo (a tiny network rebuilding a face).",
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
        "[reconstruct] extra (PyTorch, OpenCV, SciPy).",
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
    preset = args.preset
    if args.effort is not None:
        if mode != LOSSY:
            raise OptionError("-e / --effort applies to lossy mode only")
        preset = preset_for_effort(args.effort)
    elif preset is not None and mode != LOSSY:
        raise OptionError("--preset / preset= applies to lossy mode only")
    lossy = {}
    if mode == LOSSY:
        lossy = dict(
            preset=preset or DEFAULT_PRESET,
            device=args.device,
            seed=args.seed,
            threads=args.threads,
        )
    return EncodeOptions(
        mode=mode,
        near=args.near_lossless or 0,
        lmbda=args.lmbda,
        bpp=args.bpp,
        psnr=args.psnr,
        quality=args.quality,
        steps=args.steps,
        strip=args.strip,
        frame=args.frame,
        **lossy,
    )


def _note(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(f"neural-memory: note: {text}", file=sys.stderr)


@contextlib.contextmanager
def _announce_compiling(args: argparse.Namespace, engine: str) -> Iterator[None]:
    """Around an engine's first run on this machine, which compiles its numba kernels for
    tens of seconds without a word otherwise: one line, once the run has lasted
    ``progress.COMPILE_NOTICE_DELAY`` seconds (a run that fails on bad input at once says
    only its error)."""
    from neural_memory import progress

    notice = progress.compile_notice(engine)
    timer = None
    if notice:
        timer = threading.Timer(progress.COMPILE_NOTICE_DELAY, _note, (args, notice))
        timer.daemon = True
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()


@contextlib.contextmanager
def _stdio(args: argparse.Namespace, default_suffix: str) -> Iterator[tuple[Path, Path]]:
    """The input and output paths of a single-file command, with ``-`` as standard input
    (read into a temporary file) or standard output (written to a temporary file, copied
    out once complete, so a failed run writes nothing)."""
    source, output = args.inputs[0], args.output
    if source != "-" and str(output) != "-":
        yield Path(source), output
        return
    if str(output) == "-" and sys.stdout.isatty():
        raise OptionError("refusing to write binary data to a terminal: redirect it or use -o FILE")
    if source == "-" and output is None:
        raise OptionError("with input from standard input, give -o FILE or -o - (stdout)")
    with tempfile.TemporaryDirectory(prefix="neural-memory-") as tmp:
        if source == "-":
            source_path = Path(tmp) / "stdin"
            source_path.write_bytes(sys.stdin.buffer.read())
        else:
            source_path = Path(source)
        output_path = Path(tmp) / f"stdout{default_suffix}" if str(output) == "-" else output
        yield source_path, output_path
        if str(output) == "-":
            sys.stdout.buffer.write(output_path.read_bytes())
            sys.stdout.buffer.flush()


def _report_stream(args: argparse.Namespace):
    """Where summaries go: stdout, unless stdout carries the image."""
    return sys.stderr if str(args.output) == "-" else sys.stdout


def _run_encode(args: argparse.Namespace) -> int:
    options = _encode_options(args)
    if args.verbose:
        print(f"neural-memory: options: {options}", file=sys.stderr)
    with _announce_compiling(args, options.mode):
        if _is_batch(args):
            from neural_memory.batch import IMAGE_SUFFIXES, encode_job

            return _run_batch(args, encode_job, options, IMAGE_SUFFIXES, ".nmem")
        if args.output is None and args.inputs[0] != "-":
            args.output = Path(args.inputs[0]).with_suffix(".nmem")
        with _stdio(args, ".nmem") as (source, output):
            check_output_path(output, force=args.force, inputs=(source,))
            with progress_bar(f"encoding {source.name}", disable=args.quiet) as progress:
                report = encode_file(
                    source,
                    output,
                    force=args.force,
                    options=options,
                    progress=progress,
                    warn=lambda text: _note(args, text),
                )
    stream = _report_stream(args)
    if args.json:
        print(json.dumps(_encode_json(report, args), indent=2), file=stream)
    elif not args.quiet:
        print(_encode_summary(report, args), file=stream)
    return 0


def _shown(path: Path | str, args: argparse.Namespace, which: str) -> str:
    """A path as the user gave it (``-`` for the standard streams)."""
    if which == "input" and args.inputs[0] == "-":
        return "-"
    if which == "output" and str(args.output) == "-":
        return "-"
    return str(path)


def _encode_json(report, args: argparse.Namespace) -> dict:
    return dict(
        source=_shown(report.source, args, "input"),
        output=_shown(report.output, args, "output"),
        mode=report.mode,
        width=report.width,
        height=report.height,
        channels=report.channels,
        input_bytes=report.input_bytes,
        output_bytes=report.output_bytes,
        bpp=report.bpp,
        bpsp=report.bpsp,
        psnr=report.psnr,
        max_error=report.max_error,
        seconds=report.seconds,
        sections=report.sections,
        notes=list(report.notes),
    )


def _encode_summary(report, args: argparse.Namespace) -> str:
    size = f"{report.width}x{report.height}x{report.channels}"
    if report.mode == "lossy":
        quality = f"{report.bpp:.3f} bpp, PSNR {report.psnr:.2f} dB"
    elif report.mode == "lossless":
        quality = f"{report.bpsp:.3f} bpsp, exact"
    else:
        quality = f"{report.bpsp:.3f} bpsp, max error {report.max_error}"
    ratio = report.input_bytes / report.output_bytes
    smaller = f"{ratio:.1f}x smaller than" if ratio >= 1 else f"{1 / ratio:.2f}x the size of"
    line = (
        f"{_shown(report.source, args, 'input')} -> {_shown(report.output, args, 'output')}: "
        f"{size}, {report.mode}, {report.output_bytes:,} bytes ({smaller} the input), "
        f"{quality}, {report.seconds:.1f} s"
    )
    if args.verbose and report.sections:
        line += "\n  sections " + ", ".join(f"{t} {n:,} B" for t, n in report.sections.items())
    return line


def _decode_suffix(args: argparse.Namespace) -> str:
    """The output format's extension: ``--format``, else the output name's, else .png."""
    if args.format:
        suffix = "." + args.format.lower().lstrip(".")
        given = args.output is not None and str(args.output) != "-" and args.output.suffix
        if given and args.output.suffix.lower() != suffix and not _is_batch(args):
            raise OptionError(
                f"--format {args.format} does not match the output name {args.output}"
            )
        return suffix
    if args.output is not None and str(args.output) != "-" and args.output.suffix:
        return args.output.suffix.lower()
    return ".png"


def _run_decode(args: argparse.Namespace) -> int:
    options = DecodeOptions(
        size=args.size,
        scale=args.scale,
        max_pixels=args.max_pixels,
        strip=args.strip,
        output_quality=args.quality,
    )
    suffix = _decode_suffix(args)
    check_output_format(Path("x" + suffix))
    note = output_quality_note("x" + suffix, args.quality)
    if note:
        _note(args, note)
    if _is_batch(args):
        from neural_memory.batch import NMEM_SUFFIXES, decode_job

        return _run_batch(args, decode_job, options, NMEM_SUFFIXES, suffix)
    if args.output is None and args.inputs[0] != "-":
        args.output = Path(args.inputs[0]).with_suffix(suffix)
    start = time.perf_counter()
    with _stdio(args, suffix) as (source, output):
        pixels = decode_file(
            source, output, force=args.force, options=options, warn=lambda t: _note(args, t)
        )
        seconds = time.perf_counter() - start
        output_bytes = output.stat().st_size
    height, width, channels = pixels.shape
    stream = _report_stream(args)
    if args.json:
        record = dict(
            source=_shown(source, args, "input"),
            output=_shown(output, args, "output"),
            format=suffix.lstrip("."),
            width=width,
            height=height,
            channels=channels,
            bit_depth=16 if pixels.dtype.itemsize == 2 else 8,
            output_bytes=output_bytes,
            seconds=seconds,
        )
        print(json.dumps(record, indent=2), file=stream)
    elif not args.quiet:
        print(
            f"{_shown(source, args, 'input')} -> {_shown(output, args, 'output')}: "
            f"{width}x{height}x{channels}, {seconds:.2f} s",
            file=stream,
        )
    return 0


def _run_info(args: argparse.Namespace) -> int:
    infos = []
    for path in args.inputs:
        data = sys.stdin.buffer.read() if str(path) == "-" else read_nmem(path)
        infos.append((path, read_info(data)))
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


_interrupted = False


def _on_sigint(signum, frame) -> None:
    """Ctrl-C: remember it (an extension that catches the KeyboardInterrupt may turn it into
    another error, e.g. a SystemError) and raise KeyboardInterrupt as Python does."""
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


def _quiet_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so the interpreter's final flush
    cannot fail again (the documented recipe for SIGPIPE in Python)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # pragma: no cover - stdout without a file descriptor
        pass


def main(argv: Sequence[str] | None = None) -> int:
    global _interrupted
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command_of(argv))
    args = parser.parse_args(argv)
    _interrupted = False
    try:
        previous = signal.signal(signal.SIGINT, _on_sigint)
    except ValueError:  # not the main thread: leave signals alone
        previous = None
    try:
        code = int(args.run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return code
    except KeyboardInterrupt:
        print("neural-memory: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _quiet_stdout()
        return 141
    except NeuralMemoryError as exc:
        if _interrupted:
            print("neural-memory: interrupted", file=sys.stderr)
            return 130
        if args.debug:
            raise
        print(f"neural-memory: error: {exc}", file=sys.stderr)
        return 1
    except MemoryError:
        print("neural-memory: error: out of memory", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug: still one line, with the way to get details
        if _interrupted:  # e.g. a SystemError from an extension that swallowed Ctrl-C
            print("neural-memory: interrupted", file=sys.stderr)
            return 130
        if args.debug:
            raise
        print(
            f"neural-memory: internal error: {type(exc).__name__}: {exc} "
            "(run with --debug for the traceback and please report it)",
            file=sys.stderr,
        )
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


if __name__ == "__main__":
    raise SystemExit(main())
