"""Measure batch throughput: sequential vs the local process pool vs a local Dask cluster.

Issue 6's target: for the 24 Kodak images in lossless mode, the pool's wall time is at most
0.6x the sequential time on a 2-core machine, and the cluster's outputs are byte-identical.
The three runs happen in one process invocation, one after the other, so their ratio is fair.

    python scripts/bench_batch.py ../shared/data/kodak --out bench-results/batch.json
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

from neural_memory.batch import IMAGE_SUFFIXES, default_workers, encode_job, plan, run_batch
from neural_memory.options import EncodeOptions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", type=Path, help="folder of images")
    parser.add_argument("--mode", default="lossless", choices=["lossless", "near-lossless"])
    parser.add_argument("--near", type=int, default=0)
    parser.add_argument("--limit", type=int, help="use only the first N images")
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--no-cluster", action="store_true", help="skip the Dask cluster run")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()

    options = EncodeOptions(mode=args.mode, near=args.near)
    work = Path(tempfile.mkdtemp(prefix="nm-batch-"))
    figures: dict = dict(
        images=str(args.images),
        mode=args.mode,
        near=args.near,
        workers=args.workers,
        machine=f"{platform.machine()}, {default_workers()} cores, {platform.python_version()}",
        date=time.strftime("%Y-%m-%d"),
    )
    try:
        runs = {"sequential": dict(workers=1), "pool": dict(workers=args.workers)}
        for name, kwargs in runs.items():
            jobs = plan([args.images], work / name, suffixes=IMAGE_SUFFIXES, new_suffix=".nmem")
            jobs = jobs[: args.limit] if args.limit else jobs
            summary = run_batch(jobs, encode_job, options, **kwargs)
            if not summary.ok:
                raise SystemExit(f"{name} run had failures")
            figures[f"{name}_seconds"] = round(summary.wall_seconds, 2)
            figures["files"] = len(jobs)
            print(f"{name:10} {len(jobs)} files in {summary.wall_seconds:7.1f} s")
        figures["pool_over_sequential"] = round(
            figures["pool_seconds"] / figures["sequential_seconds"], 3
        )
        if not args.no_cluster:
            from distributed import LocalCluster

            with LocalCluster(
                n_workers=args.workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
            ) as cluster:
                jobs = plan(
                    [args.images], work / "cluster", suffixes=IMAGE_SUFFIXES, new_suffix=".nmem"
                )
                jobs = jobs[: args.limit] if args.limit else jobs
                summary = run_batch(jobs, encode_job, options, cluster=cluster.scheduler_address)
            figures["cluster_seconds"] = round(summary.wall_seconds, 2)
            identical = all(
                (work / "sequential" / job.output.relative_to(work / "cluster")).read_bytes()
                == job.output.read_bytes()
                for job in jobs
            )
            figures["cluster_identical"] = identical
            print(
                f"{'cluster':10} {len(jobs)} files in {summary.wall_seconds:7.1f} s, "
                f"byte-identical to sequential: {identical}"
            )
        print(f"pool / sequential = {figures['pool_over_sequential']:.3f}")
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(figures, indent=2) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
