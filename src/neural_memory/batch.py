"""Many files at once: planning, parallel execution, resume, and a summary table.

A batch is a list of :class:`Job` (one source, one output). Jobs run through any
``concurrent.futures.Executor``: a local process pool by default, or a Dask cluster's
executor (``--cluster ADDRESS``), so the same code path serves one laptop and many machines.
Each job catches its own errors, so one bad file is reported and the batch goes on. Outputs
are written atomically, so an output that exists is complete: re-running the same command
skips it (resume) unless ``force`` is set.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from neural_memory.atomic import remove_partial_files
from neural_memory.errors import NeuralMemoryError, OptionError
from neural_memory.options import DecodeOptions, EncodeOptions

IMAGE_SUFFIXES = {".png", ".tif", ".tiff", ".bmp", ".jpg", ".jpeg", ".webp", ".ppm", ".pgm"}
NMEM_SUFFIXES = {".nmem"}


@dataclass(frozen=True)
class Job:
    """One file to convert."""

    source: Path
    output: Path


@dataclass(frozen=True)
class JobResult:
    """What happened to one job; ``error`` is a one-line message when it failed."""

    source: Path
    output: Path
    status: str  # "done", "skipped" or "failed"
    mode: str = ""
    input_bytes: int = 0
    output_bytes: int = 0
    seconds: float = 0.0
    psnr: float | None = None
    max_error: int | None = None
    error: str | None = None


@dataclass
class BatchSummary:
    """Totals over a batch, for the closing table."""

    results: list[JobResult] = field(default_factory=list)
    wall_seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def ok(self) -> bool:
        return self.count("failed") == 0


def expand_inputs(
    inputs: Iterable[str | os.PathLike], suffixes: set[str]
) -> list[tuple[Path, Path]]:
    """Expand files, globs and folders into ``(file, path relative to its root)`` pairs.

    Folders are searched recursively for files with one of ``suffixes``; a glob's root is
    its leading part without wildcards (``shots`` in ``shots/**/*.png``). The relative path
    lets the output folder mirror the input tree, as ``rsync`` or ``cp -r`` would, so two
    ``x.png`` in different subfolders stay apart. Explicit files are taken by their name.
    """
    found: list[tuple[Path, Path]] = []
    for item in inputs:
        text = str(item)
        magic = glob.has_magic(text)
        matches = sorted(glob.glob(text, recursive=True)) if magic else [text]
        if not matches:
            raise OptionError(f"no files match {text!r}")
        for match in matches:
            path = Path(match)
            if path.is_dir():
                for child in sorted(path.rglob("*")):
                    if child.is_file() and child.suffix.lower() in suffixes:
                        found.append((child, child.relative_to(path)))
            elif magic:
                found.append((path, path.relative_to(_glob_root(text))))
            else:
                found.append((path, Path(path.name)))
    seen: set[Path] = set()
    unique = []
    for path, rel in found:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append((path, rel))
    return unique


def _glob_root(pattern: str) -> Path:
    """The leading folders of ``pattern`` before its first wildcard (``.`` if none).

    >>> _glob_root("shots/**/*.png").as_posix(), _glob_root("*.png").as_posix()
    ('shots', '.')
    """
    parts = Path(pattern).parts
    fixed = []
    for part in parts[:-1]:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def plan(
    inputs: Iterable[str | os.PathLike],
    outdir: Path | None,
    *,
    suffixes: set[str],
    new_suffix: str,
) -> list[Job]:
    """Jobs for every input: the output goes to ``outdir`` (mirroring folders) or beside it."""
    jobs = []
    for source, rel in expand_inputs(inputs, suffixes):
        if outdir is None:
            output = source.with_suffix(new_suffix)
        else:
            output = (outdir / rel).with_suffix(new_suffix)
        jobs.append(Job(source, output))
    outputs = [job.output.resolve() for job in jobs]
    if len(set(outputs)) != len(outputs):
        raise OptionError("two inputs would write the same output file; use an output folder")
    return jobs


def _guarded(job: Job, force: bool, action: Callable[[], JobResult]) -> JobResult:
    """Skip a job whose output exists, create its folder, and turn any error into a result.

    Shared by encode and decode so that resume and per-file error reporting behave alike;
    OSError is caught too (an unwritable output folder fails that file, not the batch).
    """
    if job.output.exists() and not force:
        return JobResult(job.source, job.output, "skipped", output_bytes=job.output.stat().st_size)
    try:
        job.output.parent.mkdir(parents=True, exist_ok=True)
        return action()
    except NeuralMemoryError as exc:
        return JobResult(job.source, job.output, "failed", error=str(exc))
    except OSError as exc:
        return JobResult(job.source, job.output, "failed", error=exc.strerror or str(exc))


def encode_job(job: Job, options: EncodeOptions, force: bool) -> JobResult:
    """Encode one file (runs in a worker process; never raises for bad input)."""
    from neural_memory.api import encode_file

    def run() -> JobResult:
        report = encode_file(job.source, job.output, force=force, options=options)
        return JobResult(
            job.source,
            job.output,
            "done",
            mode=report.mode,
            input_bytes=report.input_bytes,
            output_bytes=report.output_bytes,
            seconds=report.seconds,
            psnr=report.psnr,
            max_error=report.max_error,
        )

    return _guarded(job, force, run)


def decode_job(job: Job, options: DecodeOptions, force: bool) -> JobResult:
    """Decode one file (runs in a worker process; never raises for bad input)."""
    from neural_memory.api import decode_file

    def run() -> JobResult:
        start = time.perf_counter()
        decode_file(job.source, job.output, force=force, options=options)
        return JobResult(
            job.source,
            job.output,
            "done",
            input_bytes=job.source.stat().st_size,
            output_bytes=job.output.stat().st_size,
            seconds=time.perf_counter() - start,
        )

    return _guarded(job, force, run)


def default_workers() -> int:
    """One worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _init_worker(threads: int) -> None:
    # Each process gets its share of the cores; oversubscription makes a pool slower.
    os.environ["OMP_NUM_THREADS"] = str(threads)
    numba = sys.modules.get("numba")
    if numba is None:
        os.environ["NUMBA_NUM_THREADS"] = str(threads)
    else:
        # numba came with the fork (the parent imported it, e.g. to check its cache): its
        # thread count is fixed already, and changing the variable now made its next compile
        # fail ("Cannot set NUMBA_NUM_THREADS ... once the threads have been launched", a
        # cold-cache lossy batch); the run-time limit does the same without that conflict
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    # Ctrl-C reaches the whole process group: the parent alone decides, and stops the
    # workers with SIGTERM, which ends a worker at once (the pool would catch a SystemExit
    # as a job's result and go on with the next job) after removing the temporary file of
    # a write in progress, so nothing more is written.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_term)


def _exit_on_term(signum, frame) -> None:
    remove_partial_files()
    os._exit(128 + signum)


def _stop_workers(executor: Executor) -> None:
    """After Ctrl-C: cancel what has not started and stop the running jobs now (waiting for
    them would write more outputs after the user asked to stop)."""
    # the pool's processes: shutdown() forgets them, so they are taken first
    processes = list((getattr(executor, "_processes", None) or {}).values())
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=10)


def make_executor(workers: int, cluster: str | None) -> Executor:
    """A local process pool, or the executor of the Dask cluster at ``cluster``."""
    if cluster:
        try:
            from distributed import Client
        except ImportError:
            raise OptionError(
                "--cluster needs Dask distributed: pip install 'neural-memory[cluster]'"
            ) from None
        try:
            client = Client(cluster, timeout="10s")
        except OSError as exc:
            raise OptionError(f"cannot reach the Dask scheduler at {cluster}: {exc}") from None
        return _ClientExecutor(client)
    return ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(1,))


class _ClientExecutor(Executor):
    """A Dask client's executor that also closes the client when the batch ends."""

    def __init__(self, client) -> None:
        self._client = client
        self._executor = client.get_executor(pure=False)

    def submit(self, fn, /, *args, **kwargs):
        return self._executor.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, **kwargs) -> None:
        self._executor.shutdown(wait=wait)
        self._client.close()


def run_batch(
    jobs: list[Job],
    work: Callable[[Job, EncodeOptions, bool], JobResult]
    | Callable[[Job, DecodeOptions, bool], JobResult],
    options: EncodeOptions | DecodeOptions,
    *,
    force: bool = False,
    workers: int | None = None,
    cluster: str | None = None,
    progress: Callable[[int, int, dict], None] | None = None,
) -> BatchSummary:
    """Run every job through ``work`` (``encode_job`` or ``decode_job``), in parallel.

    With one worker and no cluster the jobs run in this process, in order (no pool start-up,
    easiest to debug). Results come back in input order.
    """
    workers = workers or default_workers()
    start = time.perf_counter()
    results: dict[int, JobResult] = {}
    total = len(jobs)
    if workers == 1 and not cluster:
        for index, job in enumerate(jobs):
            results[index] = work(job, options, force)
            if progress:
                progress(index + 1, total, {"failed": _failed(results)})
    else:
        executor = make_executor(workers, cluster)
        try:
            futures = {executor.submit(work, job, options, force): i for i, job in enumerate(jobs)}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                if progress:
                    progress(len(results), total, {"failed": _failed(results)})
        except KeyboardInterrupt:
            _stop_workers(executor)
            raise
        finally:
            executor.shutdown(wait=True, cancel_futures=True)
    ordered = [results[i] for i in range(total)]
    return BatchSummary(ordered, time.perf_counter() - start)


def _failed(results: dict[int, JobResult]) -> int:
    return sum(r.status == "failed" for r in results.values())


def summary_json(summary: BatchSummary) -> dict:
    """The summary as plain data (``--json``): every file's result and the totals."""
    files = [
        {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(r).items()}
        for r in summary.results
    ]
    done = [r for r in summary.results if r.status == "done"]
    return dict(
        files=files,
        done=summary.count("done"),
        skipped=summary.count("skipped"),
        failed=summary.count("failed"),
        input_bytes=sum(r.input_bytes for r in done),
        output_bytes=sum(r.output_bytes for r in done),
        seconds=summary.wall_seconds,
    )


def format_summary(summary: BatchSummary) -> str:
    """A table a person reads after a batch: one row per file, then the totals."""
    rows = [
        f"{'file':40} {'status':8} {'bytes in':>12} {'bytes out':>12} {'ratio':>7} {'quality':>12}"
    ]
    for r in summary.results:
        ratio = f"{r.input_bytes / r.output_bytes:.2f}" if r.output_bytes and r.input_bytes else ""
        if r.status == "failed":
            quality = r.error or ""
        elif r.mode == "lossless":
            quality = "exact" if r.max_error == 0 else f"NOT EXACT ({r.max_error})"
        elif r.mode == "near-lossless":
            quality = f"max err {r.max_error}"
        elif r.psnr is not None:
            quality = f"{r.psnr:.2f} dB"
        else:
            quality = ""
        name = str(r.source)
        name = name if len(name) <= 40 else "..." + name[-37:]
        sizes = f"{r.input_bytes:>12,} {r.output_bytes:>12,}"
        rows.append(f"{name:40} {r.status:8} {sizes} {ratio:>7} {quality}")
    done = [r for r in summary.results if r.status == "done"]
    bytes_in = sum(r.input_bytes for r in done)
    bytes_out = sum(r.output_bytes for r in done)
    ratio = f"{bytes_in / bytes_out:.2f}x" if bytes_out else "-"
    rows.append(
        f"{len(summary.results)} files: {summary.count('done')} done, "
        f"{summary.count('skipped')} skipped (output exists), {summary.count('failed')} failed; "
        f"{bytes_in:,} -> {bytes_out:,} bytes ({ratio}) in {summary.wall_seconds:.1f} s"
    )
    return "\n".join(rows)
