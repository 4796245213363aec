"""Build the native core (native/, C11) into the extension ``neural_memory._native``.

Everything else about the package is declared in pyproject.toml. The compiler is the
machine's C compiler (gcc or clang); the library has no dependencies beyond the C library.
``NMEM_SOURCE_HASH`` records which sources the module was built from, so a test can tell a
stale in-place build (``pip install -e .`` does not rebuild on its own) from a fresh one.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


def native_sources() -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / "native" / "src").glob("*.c"))


def source_hash() -> str:
    """sha256 over the library's sources and headers and the binding (see tests/test_native.py)."""
    files = sorted((ROOT / "native" / "src").glob("*.[ch]")) + sorted(
        (ROOT / "native" / "include").glob("*.h")
    )
    files.append(ROOT / "src" / "neural_memory" / "_native.c")
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


native = Extension(
    "neural_memory._native",
    sources=["src/neural_memory/_native.c", *native_sources()],
    include_dirs=["native/include"],
    define_macros=[("NMEM_SOURCE_HASH", f'"{source_hash()}"')],
    extra_compile_args=["-std=c11", "-O3", "-Wall", "-Wextra", "-Werror"],
)

# PNG row unfiltering for 16-bit colour PNG (neural_memory/png.py), which Pillow truncates.
png = Extension(
    "neural_memory._png",
    sources=["src/neural_memory/_png.c"],
    extra_compile_args=["-std=c11", "-O3", "-Wall", "-Wextra", "-Werror"],
)

# The lossy encoder's C training kernels (native/train/, see its nm_train.h): a separate
# module, built with -O3; the AVX2/FMA code paths carry their own target attributes and are
# chosen at run time, so the flags stay portable.
train_sources = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "native" / "train").glob("*.c"))
train_native = Extension(
    "neural_memory.lossy.encoding._train_native",
    sources=train_sources,
    depends=[str((ROOT / "native" / "train" / "nm_train.h").relative_to(ROOT))],
    # -fno-wrapv undoes Python's -fwrapv, which kept GCC from vectorising the plain C loops
    # (3x slower fallback)
    extra_compile_args=["-std=c11", "-O3", "-fno-wrapv", "-Wall", "-Wextra", "-Werror"],
)


class BuildExt(build_ext):
    """Put in-place builds (``pip install -e .``, ``build_ext --inplace``) in a new file instead
    of overwriting the old one: a process that has the old module loaded keeps its mapping of
    the old file, where an in-place rewrite changed its code under it (seen here as a wrong
    golden hash in a test run while another session rebuilt)."""

    def copy_file(self, infile, outfile, *args, **kwargs):
        if str(outfile).endswith((".so", ".pyd")) and os.path.exists(outfile):
            os.unlink(outfile)
        return super().copy_file(infile, outfile, *args, **kwargs)


if __name__ == "__main__":  # setuptools runs this file as __main__; tests import source_hash
    setup(
        ext_modules=[native, png, train_native] if train_sources else [native, png],
        cmdclass={"build_ext": BuildExt},
    )
