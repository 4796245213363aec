"""Runs the measurements: one work item = (image, codec, setting).

Why the design looks like this:

* Every item runs in a **fresh forked worker process** (``maxtasksperchild=1``).  That is
  what makes the peak-memory figure honest for C libraries: we read ``getrusage``'s
  ``ru_maxrss`` of that process after encode+decode and subtract its RSS at the start of
  the item (a forked child's high-water mark starts at its RSS at fork).  tracemalloc would
  miss every C allocation.  Metrics are computed after the memory reading.
* Each finished item is appended to ``results.jsonl`` at once, so an interrupted run keeps
  its work, and ``--resume`` skips items whose key is already there.
* Workers are single-threaded codecs; parallelism is across items (``--jobs``).
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import platform
import resource
import shlex
import shutil
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neural_memory.metrics import bits_per_pixel, bits_per_sample, psnr
from neural_memory.options import EncodeOptions

from . import codecs as codec_registry
from .codecs import LOSSLESS, LOSSY, NEAR_LOSSLESS, CodecSpec, CodecUnavailable, Setting
from .config import BenchConfig
from .dataset import find_images, load_rgb
from .quality import max_abs_error, ms_ssim, ms_ssim_scales
from .report import write_outputs
from .results import CROPS_DIR, RESULTS_JSONL, BenchResults, Record, item_key, read_jsonl


@dataclass(frozen=True)
class WorkItem:
    """One measurement to make. ``options`` are the base options of our codec (preset,
    device); the setting adds its rate or bound. Items travel to the workers whole, so no
    module state has to be set before the workers start."""

    image: str  # path
    codec: str
    setting: Setting
    options: EncodeOptions = field(default_factory=EncodeOptions)

    @property
    def key(self) -> str:
        return item_key(Path(self.image).name, self.codec, self.setting)


def settings_for(spec: CodecSpec, config: BenchConfig) -> tuple[Setting, ...]:
    """The settings swept for a codec after applying the config's overrides."""
    if spec.name in config.settings:
        return tuple(config.settings[spec.name])
    if spec.ours and spec.mode == LOSSY and config.lambdas:
        return tuple(config.lambdas)
    if spec.mode == NEAR_LOSSLESS and config.near:
        return tuple(config.near)
    return spec.settings


def _current_rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss() -> int:
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def measure(item: WorkItem) -> Record:
    """Encode, decode and score one item; never raises (errors become records)."""
    spec = codec_registry.get_codec(item.codec).with_options(item.options)
    rec: Record = {
        "key": item.key,
        "image": Path(item.image).name,
        "codec": spec.name,
        "family": spec.family,
        "mode": spec.mode,
        "param": spec.param,
        "setting": item.setting,
    }
    try:
        img = load_rgb(item.image)
        h, w, c = img.shape
        rss0 = _current_rss() if sys.platform.startswith("linux") else None
        t0 = time.perf_counter()
        data = spec.encode(img, item.setting)
        t1 = time.perf_counter()
        out = spec.decode(data)
        t2 = time.perf_counter()
        peak = _peak_rss()
        out = np.asarray(out)
        if out.ndim == 2:
            out = out[..., None]
        if out.shape != img.shape or out.dtype != np.uint8:
            raise ValueError(f"decoded {out.shape} {out.dtype}, expected {img.shape} uint8")
        err = max_abs_error(img, out)
        rec.update(
            status="ok",
            height=h,
            width=w,
            channels=c,
            bytes=len(data),
            bpp=bits_per_pixel(len(data), w, h),
            bpsp=bits_per_sample(len(data), w, h, c),
            psnr=psnr(img, out),
            max_error=err,
            encode_s=t1 - t0,
            decode_s=t2 - t1,
            peak_rss_mb=peak / 2**20,
            peak_rss_delta_mb=None if rss0 is None else max(peak - rss0, 0) / 2**20,
        )
        if spec.mode == LOSSY:
            rec["ms_ssim"] = ms_ssim(img, out)
            rec["ms_ssim_scales"] = ms_ssim_scales(h, w)
        elif spec.mode == LOSSLESS:
            rec["exact"] = err == 0
        else:
            rec["within_bound"] = err <= int(item.setting)
            rec["ms_ssim"] = ms_ssim(img, out)
    except CodecUnavailable as exc:
        rec.update(status="unavailable", error=str(exc))
    except Exception as exc:  # recorded, reported, and does not stop the run
        rec.update(
            status="error",
            error=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(limit=5),
        )
    return _json_safe(rec)


def _json_safe(rec: Record) -> Record:
    """inf PSNR (lossless) becomes None so the JSONL stays strict JSON."""
    for k, v in rec.items():
        if isinstance(v, float) and not math.isfinite(v):
            rec[k] = None
        elif isinstance(v, np.generic):
            rec[k] = v.item()
    return rec


def _run_items(items: list[WorkItem], jobs: int) -> Iterator[Record]:
    if jobs <= 0:  # in-process, for debugging: no memory isolation
        for it in items:
            yield measure(it)
        return
    ctx = mp.get_context("fork")
    with ctx.Pool(processes=jobs, maxtasksperchild=1) as pool:
        yield from pool.imap_unordered(measure, items, chunksize=1)


def environment() -> dict[str, Any]:
    """Machine and library versions, for the report."""
    env: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    env["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import psutil

        env["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    return env


def run_benchmark(config: BenchConfig) -> BenchResults:
    """Measure every selected codec on every image, then write the JSON/Markdown/plots."""
    start = time.perf_counter()
    ours = config.our_options()
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jsonl = out_dir / RESULTS_JSONL
    images = find_images(Path(config.images_dir), config.limit, config.images)
    specs = codec_registry.select_codecs(config.codecs, config.exclude)

    skipped: dict[str, str] = {}
    runnable: list[CodecSpec] = []
    for spec in specs:
        reason = spec.unavailable()
        if reason:
            skipped[spec.name] = reason
        else:
            runnable.append(spec)

    wanted = [
        WorkItem(str(p), spec.name, s, ours)
        for spec in runnable
        for s in settings_for(spec, config)
        for p in images
    ]
    wanted_keys = {it.key for it in wanted}
    if config.resume or config.report_only:
        done = {r["key"]: r for r in read_jsonl(jsonl) if r.get("status") == "ok"}
    else:
        done = {}
        jsonl.write_text("")
        shutil.rmtree(out_dir / CROPS_DIR, ignore_errors=True)  # pixels of the old records
    todo = [] if config.report_only else [it for it in wanted if it.key not in done]

    records = [r for k, r in done.items() if k in wanted_keys]
    if todo:
        bar = None
        if config.progress:
            from tqdm import tqdm

            bar = tqdm(total=len(todo), desc="bench", unit="item", dynamic_ncols=True)
        with open(jsonl, "a") as f:
            for rec in _run_items(todo, config.jobs):
                f.write(json.dumps(rec) + "\n")
                f.flush()
                records.append(rec)
                if bar is not None:
                    bar.set_postfix_str(f"{rec['codec']} {rec['image']}", refresh=False)
                    bar.update(1)
        if bar is not None:
            bar.close()

    # A codec whose engine said "not implemented" at run time is a skip, not a failure.
    for rec in records:
        if rec.get("status") == "unavailable":
            skipped.setdefault(rec["codec"], rec.get("error", "unavailable"))
    results = BenchResults(
        config=config,
        records=sorted(records, key=lambda r: (r["codec"], r["image"], str(r["setting"]))),
        codecs=[s.name for s in runnable if s.name not in skipped],
        skipped=skipped,
        images=[p.name for p in images],
        environment={**environment(), "command": config.command or shlex.join(sys.argv)},
        wall_seconds=time.perf_counter() - start,
    )
    write_outputs(results)
    return results
