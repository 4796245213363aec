"""Lossy decode time, C library vs the numba reference, on .nmem files (docs/BENCHMARKS.md).

    PYTHONPATH=src python scripts/measure_native.py FILE.nmem [...] [--repeat 5] [--json OUT]

For each file: min / median wall and CPU seconds of a warm decode with the C decoder
(``decoder.decode_lossy``) and with the numba reference (``reference.decode_lossy_reference``,
numba's own threads), whether they agree pixel for pixel, and the first decode in a fresh
process (``python -c 'import neural_memory; decode'``: the decode call alone and the whole
process, interpreter start and imports included).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

FRESH = """
import time, sys
t0 = time.perf_counter()
import neural_memory as nm
data = open(sys.argv[1], 'rb').read()
t1, c1 = time.perf_counter(), time.process_time()
nm.decode(data)
t2, c2 = time.perf_counter(), time.process_time()
print(t1 - t0, t2 - t1, c2 - c1)
"""


def timed(fn, repeat: int) -> tuple[list[float], list[float]]:
    walls, cpus = [], []
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        fn()
        cpus.append(time.process_time() - c)
        walls.append(time.perf_counter() - w)
    return walls, cpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from neural_memory.container import unpack
    from neural_memory.lossy.decoding.decoder import decode_lossy
    from neural_memory.lossy.decoding.reference import decode_lossy_reference

    rows = []
    for path in args.files:
        data = path.read_bytes()
        c = unpack(data)
        h = c.header
        payload = c.sections["LOSY"]
        shape = (h.height, h.width, h.channels)
        t = time.perf_counter()
        ref = decode_lossy_reference(payload, *shape)  # compiles numba or loads its cache
        numba_first = time.perf_counter() - t
        out = decode_lossy(payload, *shape)
        same = bool(np.array_equal(out, ref))
        cw, cc = timed(lambda p=payload, s=shape: decode_lossy(p, *s), args.repeat)
        nw, nc = timed(lambda p=payload, s=shape: decode_lossy_reference(p, *s), args.repeat)
        fresh = subprocess.run(
            [sys.executable, "-c", FRESH, str(path)], capture_output=True, text=True, check=True
        )
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", FRESH, str(path)], capture_output=True, check=True)
        process = time.perf_counter() - t
        imports, first, first_cpu = (float(v) for v in fresh.stdout.split())
        row = {
            "file": path.name,
            "size": f"{h.width}x{h.height}x{h.channels}",
            "bytes": len(data),
            "bpp": 8 * len(data) / (h.width * h.height),
            "identical": same,
            "c_wall_min": min(cw),
            "c_wall_median": statistics.median(cw),
            "c_cpu_min": min(cc),
            "numba_wall_min": min(nw),
            "numba_wall_median": statistics.median(nw),
            "numba_cpu_min": min(nc),
            "numba_first_in_this_process": numba_first,
            "fresh_process_decode": first,
            "fresh_process_decode_cpu": first_cpu,
            "fresh_process_imports": imports,
            "fresh_process_total": process,
        }
        rows.append(row)
        print(
            f"{path.name} {row['size']} {row['bpp']:.2f} bpp identical={same}: "
            f"C {min(cw):.3f} s (median {statistics.median(cw):.3f}, cpu {min(cc):.3f}) | "
            f"numba {min(nw):.3f} s (median {statistics.median(nw):.3f}, cpu {min(nc):.3f}) | "
            f"fresh process: decode {first:.3f} s (cpu {first_cpu:.3f}), imports {imports:.3f} s, "
            f"whole process {process:.3f} s",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
