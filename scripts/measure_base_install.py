"""The base install as a new user gets it (docs/BENCHMARKS.md, issue 16): size and first use.

    python scripts/measure_base_install.py IMAGE.png --lossy FILE.nmem [--venv DIR] [--json OUT]

Creates a fresh virtual environment (a temporary one unless --venv names a new folder),
``pip install``s this checkout with no extras, and reports:

- the size of its site-packages, in all and per top-level entry, and that neither numba,
  llvmlite nor imagecodecs was installed;
- the first decode of a lossless file of IMAGE (encoded in that environment by the C engine)
  in the first process that decodes anything there (a new user's real first use: nothing
  compiled or cached beyond what pip's install did), and the median of ``--repeat`` later
  decodes, each in its own fresh process; wall and CPU seconds of the decode call, and the
  ratios first / later of both (CPU is the steadier figure on a shared machine);
- the same for the lossy FILE (encoded elsewhere: the base install has no lossy encoder).

pip needs its package index (PyPI) for numpy, Pillow and tqdm, as any user's install does.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ABSENT = ("numba", "llvmlite", "imagecodecs")

DECODE = """
import sys, time
t0 = time.perf_counter()
import neural_memory as nm
data = open(sys.argv[1], "rb").read()
t1, c1 = time.perf_counter(), time.process_time()
nm.decode(data)
t2, c2 = time.perf_counter(), time.process_time()
absent = [m for m in sys.modules if m.split(".")[0] in {absent!r}]
print(t1 - t0, t2 - t1, c2 - c1, len(absent))
"""


def _size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def _decode_runs(python: Path, nmem: Path, repeat: int) -> list[dict]:
    runs = []
    for attempt in range(1 + repeat):
        out = subprocess.run(
            [str(python), "-c", DECODE.format(absent=ABSENT), str(nmem)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        imports, wall, cpu, loaded = float(out[0]), float(out[1]), float(out[2]), int(out[3])
        runs.append(
            {
                "run": "first" if attempt == 0 else "later",
                "import_s": imports,
                "decode_wall_s": wall,
                "decode_cpu_s": cpu,
                "numba_or_imagecodecs_loaded": loaded,
            }
        )
    return runs


def measure(image: Path, lossy: Path, env_dir: Path, repeat: int) -> dict:
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(ROOT)], check=True)
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    )  # fmt: skip
    entries = {p.name: round(_size_mb(p), 1) for p in site.iterdir() if p.is_dir()}
    installed = [name for name in ABSENT if any(e.lower().startswith(name) for e in entries)]
    lossless = env_dir / "lossless.nmem"
    subprocess.run(
        [str(python), "-m", "neural_memory", "encode", str(image), "--lossless", "-o",
         str(lossless), "--quiet"],
        check=True,
    )  # fmt: skip
    result = {
        "site_packages_mb": round(_size_mb(site), 1),
        "largest": dict(sorted(entries.items(), key=lambda kv: -kv[1])[:8]),
        "installed_of_numba_llvmlite_imagecodecs": installed,
        "lossless": {"file": image.name, "bytes": lossless.stat().st_size},
        "lossy": {"file": lossy.name, "bytes": lossy.stat().st_size},
    }
    for kind, path in (("lossless", lossless), ("lossy", lossy)):
        runs = _decode_runs(python, path, repeat)
        result[kind]["runs"] = runs
        for clock in ("wall", "cpu"):
            later = statistics.median(r[f"decode_{clock}_s"] for r in runs[1:])
            result[kind][f"later_median_{clock}_s"] = round(later, 4)
            result[kind][f"first_over_later_{clock}"] = round(
                runs[0][f"decode_{clock}_s"] / later, 3
            )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", type=Path, help="an image to encode lossless (e.g. a Kodak PNG)")
    parser.add_argument("--lossy", type=Path, required=True, help="a lossy .nmem file")
    parser.add_argument("--venv", type=Path, help="a new folder for the environment (kept)")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument("--repeat", type=int, default=5, help="later decodes (medians)")
    args = parser.parse_args()
    if args.venv:
        if args.venv.exists():
            sys.exit(f"--venv {args.venv} exists; name a new folder")
        result = measure(args.image, args.lossy, args.venv, args.repeat)
    else:
        with tempfile.TemporaryDirectory(prefix="nm-base-") as tmp:
            result = measure(args.image, args.lossy, Path(tmp) / "venv", args.repeat)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
