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
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import codecs as codec_registry
from .codecs import LOSSLESS, LOSSY, NEAR_LOSSLESS, CodecSpec, CodecUnavailable, Setting
from .config import BenchConfig
from .metrics import bits_per_pixel, bits_per_sample, max_abs_error, ms_ssim, ms_ssim_scales, psnr

IMAGE_SUFFIXES = {".png", ".ppm", ".bmp", ".tif", ".tiff"}
RESULTS_JSONL = "results.jsonl"


@dataclass(frozen=True)
class WorkItem:
    """One measurement to make."""

    image: str  # path
    codec: str
    setting: Setting

    @property
    def key(self) -> str:
        return item_key(Path(self.image).name, self.codec, self.setting)


def item_key(image_name: str, codec: str, setting: Setting) -> str:
    """Stable identity of a measurement, used by --resume."""
    return f"{image_name}|{codec}|{json.dumps(setting)}"


@dataclass
class BenchResults:
    """What a run produced: the records (one dict per item) plus context for the report."""

    config: BenchConfig
    records: list[dict[str, Any]]
    codecs: list[str]
    skipped: dict[str, str] = field(default_factory=dict)
    images: list[str] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    wall_seconds: float = 0.0

    def ok(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("status") == "ok"]

    @classmethod
    def load(cls, out_dir: Path) -> BenchResults:
        """Results of a finished run, read back from its results.json (for docs/scripts)."""
        raw = json.loads((Path(out_dir) / "results.json").read_text())
        cfg = dict(raw["config"])
        cfg["images_dir"] = Path(cfg["images_dir"])
        cfg["out_dir"] = Path(cfg["out_dir"])
        cfg["bpp_points"] = tuple(cfg["bpp_points"])
        return cls(
            config=BenchConfig(**cfg),
            records=raw["records"],
            codecs=sorted(raw["aggregates"]),
            skipped=raw["skipped"],
            images=raw["images"],
            environment=raw["environment"],
            wall_seconds=raw["wall_seconds"],
        )


def find_images(
    images_dir: Path, limit: int | None = None, names: list[str] | None = None
) -> list[Path]:
    """Image files of the folder, sorted by name (so --limit is reproducible); ``names``
    (file names with or without extension) picks a subset, e.g. the four images of a target
    measured on part of a set, without a folder of links."""
    paths = sorted(
        p for p in Path(images_dir).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not paths:
        raise FileNotFoundError(f"no images in {images_dir}")
    if names:
        by_name = {n: p for p in paths for n in (p.name, p.stem)}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise FileNotFoundError(f"not in {images_dir}: {', '.join(missing)}")
        paths = sorted({by_name[n] for n in names})
    return paths[:limit] if limit else paths


def load_rgb(path: str | Path) -> np.ndarray:
    """Image as (H, W, 3) uint8; the benchmark is defined on 8-bit RGB."""
    from PIL import Image

    with Image.open(path) as im:
        return np.ascontiguousarray(np.asarray(im.convert("RGB")))


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


def measure(item: WorkItem) -> dict[str, Any]:
    """Encode, decode and score one item; never raises (errors become records)."""
    spec = codec_registry.get_codec(item.codec)
    rec: dict[str, Any] = {
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


def _json_safe(rec: dict[str, Any]) -> dict[str, Any]:
    """inf PSNR (lossless) becomes None so the JSONL stays strict JSON."""
    for k, v in rec.items():
        if isinstance(v, float) and not math.isfinite(v):
            rec[k] = None
        elif isinstance(v, np.generic):
            rec[k] = v.item()
    return rec


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Records from a results file, skipping a torn last line from an interrupted run."""
    records = []
    if not path.exists():
        return records
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def _run_items(items: list[WorkItem], jobs: int) -> Iterator[dict[str, Any]]:
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
    from .report import write_outputs

    start = time.perf_counter()
    codec_registry.OUR_OPTIONS.update(preset=config.preset, device=config.device)
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
        WorkItem(str(p), spec.name, s)
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
