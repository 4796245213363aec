"""The C lossless / near-lossless engine (native/src/lossless.c) against the numba reference
(neural_memory.lossless): the same payloads byte for byte, the same decodes, the golden
vectors' pinned hashes, and the C unit test plain and under ASan + UBSan (issue 16)."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neural_memory import _native
from neural_memory.lossless import decode_lossless_numba, encode_lossless_numba

ROOT = Path(__file__).resolve().parents[1]
GOLDEN_DIR = Path(__file__).parent / "golden"
KODAK = Path(
    os.environ.get("NM_KODAK", Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak")
)
CC = shutil.which("gcc") or shutil.which("cc")
NATIVE_SOURCES = sorted(str(p) for p in (ROOT / "native" / "src").glob("*.c"))
CFLAGS = ["-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{ROOT / 'native' / 'include'}"]


def _lossless_tests():
    """tests/test_lossless.py, the one owner of the pinned golden cases and of the synthetic
    test images both engines are compared on."""
    path = Path(__file__).parent / "test_lossless.py"
    spec = importlib.util.spec_from_file_location("_golden", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_LOSSLESS_TESTS = _lossless_tests()
GOLDEN_CASES = _LOSSLESS_TESTS.GOLDEN_CASES
synthetic = _LOSSLESS_TESTS.synthetic


def c_encode(img: np.ndarray, depth: int, near: int) -> bytes:
    h, w, c = img.shape
    return _native.lossless_encode(np.ascontiguousarray(img), h, w, c, depth, near)


def c_decode(payload: bytes, shape: tuple, depth: int, near: int) -> np.ndarray:
    raw = _native.lossless_decode(payload, *shape, depth, near)
    return np.frombuffer(raw, dtype=np.uint8 if depth == 8 else np.uint16).reshape(shape)


def _agree(img: np.ndarray, depth: int, near: int) -> None:
    ref = encode_lossless_numba(img, depth, near)
    assert c_encode(img, depth, near) == ref
    out = c_decode(ref, img.shape, depth, near)
    assert np.array_equal(out, decode_lossless_numba(ref, *img.shape, depth, near))
    assert int(np.abs(out.astype(np.int64) - img).max()) <= near


@pytest.mark.parametrize("near", [0, 1, 2, 4])
@pytest.mark.parametrize("depth", [8, 16])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_c_and_numba_agree_byte_for_byte(channels: int, depth: int, near: int) -> None:
    img = synthetic(11 + channels, 14 + near, channels, depth, seed=channels * 100 + depth + near)
    _agree(img, depth, near)


def test_edge_shapes_and_bounds_agree() -> None:
    rng = np.random.default_rng(5)
    shapes = [(1, 1, 1, 8, 0), (1, 9, 3, 8, 0), (9, 1, 4, 16, 3), (2, 3, 3, 8, 255)]
    for h, w, c, depth, near in shapes:
        img = rng.integers(0, 1 << depth, (h, w, c)).astype(np.uint8 if depth == 8 else np.uint16)
        _agree(img, depth, near)
    noise = rng.integers(0, 256, (10, 12, 3)).astype(np.uint8)  # long residual codes
    _agree(noise, 8, 0)
    _agree(noise, 8, 7)
    wide = rng.integers(0, 65536, (6, 7, 1)).astype(np.uint16)
    _agree(wide, 16, 0)
    _agree(wide, 16, 1000)


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden_vectors_decode_in_c(name: str) -> None:
    h, w, c, depth, near, sha = GOLDEN_CASES[name]
    payload = (GOLDEN_DIR / name).read_bytes()
    out = c_decode(payload, (h, w, c), depth, near)
    le = out.astype("<u2") if depth == 16 else out
    assert hashlib.sha256(le.tobytes()).hexdigest() == sha
    if near == 0:
        assert c_encode(out, depth, near) == payload


def test_corrupt_payloads_fail_like_numba() -> None:
    img = synthetic(10, 12, 3, 8, seed=1)
    payload = encode_lossless_numba(img, 8, 0)
    cases = [payload[:k] for k in (0, 3, 5, len(payload) // 2, len(payload) - 1)]
    cases += [payload + b"\0", bytes([2]) + payload[1:]]
    cases += [bytes([payload[0]]) + bytes(len(payload) - 1)]
    for bad in cases:
        try:
            want = decode_lossless_numba(bad, 10, 12, 3, 8, 0)
        except Exception:  # numba's verdict: an error (FormatError)
            want = None
        try:
            got = c_decode(bad, (10, 12, 3), 8, 0)
        except _native.Error:
            got = None
        assert (want is None) == (got is None)
        if want is not None:
            assert np.array_equal(want, got)


def test_pixel_limit_progress_and_errors() -> None:
    with pytest.raises(_native.Error) as info:
        _native.lossless_decode(bytes([3]) + bytes(8), 65536, 65536, 4, 16, 0)
    assert info.value.args[0] in (_native.ERR_ARGUMENT, _native.ERR_LIMIT)
    with pytest.raises(_native.Error) as info:
        _native.lossless_decode(bytes([3]) + bytes(8), 100, 100, 1, 8, 0, max_pixels=99)
    assert info.value.args[0] == _native.ERR_LIMIT
    with pytest.raises(_native.Error):
        _native.lossless_encode(bytes(10), 2, 2, 3, 8, 0)  # buffer size mismatch
    img = synthetic(40, 6, 1, 8, seed=2)
    seen = []
    payload = _native.lossless_encode(
        img, 40, 6, 1, 8, 0, progress=lambda done, total: seen.append((done, total))
    )
    assert seen == [(16, 40), (32, 40), (40, 40)]

    def stop(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _native.lossless_decode(payload, 40, 6, 1, 8, 0, progress=stop)


def _build(tmp_path: Path, flags: list[str]) -> Path:
    exe = tmp_path / "test_lossless"
    src = ROOT / "native" / "tests" / "test_lossless.c"
    subprocess.run([CC, *CFLAGS, *flags, *NATIVE_SOURCES, str(src), "-o", str(exe)], check=True)
    return exe


@pytest.mark.skipif(CC is None, reason="no C compiler")
@pytest.mark.parametrize("sanitize", [False, True], ids=["plain", "asan-ubsan"])
def test_c_unit_test_and_goldens(tmp_path: Path, sanitize: bool) -> None:
    san = ["-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
    exe = _build(tmp_path, san if sanitize else ["-O2", "-DNMEM_NO_CLONES"])
    env = {**os.environ, "ASAN_OPTIONS": "detect_leaks=1", "UBSAN_OPTIONS": "print_stacktrace=1"}
    run = subprocess.run([str(exe)], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    for name, (h, w, c, depth, near, sha) in sorted(GOLDEN_CASES.items()):
        raw = tmp_path / f"{name}.raw"
        args = [str(GOLDEN_DIR / name), *(str(v) for v in (h, w, c, depth, near)), str(raw)]
        run = subprocess.run([str(exe), *args], capture_output=True, text=True, env=env)
        assert run.returncode == 0, run.stdout + run.stderr
        assert hashlib.sha256(raw.read_bytes()).hexdigest() == sha


@pytest.mark.slow
@pytest.mark.skipif(not KODAK.is_dir(), reason="no Kodak images")
@pytest.mark.parametrize("near", [0, 1, 2, 4])
def test_kodak_crops_agree(near: int) -> None:
    from PIL import Image

    crops = {"kodim03.png": (100, 200), "kodim13.png": (0, 0), "kodim23.png": (300, 500)}
    for name, (y, x) in crops.items():
        img = np.asarray(Image.open(KODAK / name))[y : y + 96, x : x + 128]
        _agree(np.ascontiguousarray(img), 8, near)
        gray = np.ascontiguousarray(img[:, :, 1:2])
        _agree(gray, 8, near)
        deep = np.ascontiguousarray(img.astype(np.uint16) * 257 + 3)
        _agree(deep[:48, :64], 16, near)


def test_lossless_coding_imports_no_numba() -> None:
    code = (
        "import sys, numpy as np, neural_memory as nm\n"
        "img = (np.arange(20 * 9 * 4).reshape(20, 9, 4) % 251).astype(np.uint8)\n"
        "for kw in ({'mode': 'lossless'}, {'mode': 'near-lossless', 'near': 2}):\n"
        "    out = nm.decode(nm.encode(img, **kw))\n"
        "    assert np.abs(out.astype(int) - img).max() <= kw.get('near', 0)\n"
        "assert 'numba' not in sys.modules, 'lossless coding imported numba'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _read_pnm(data: bytes) -> np.ndarray:
    """A binary PGM / PPM / PAM (as nmem_to_ppm writes them) as an (H, W, C) array."""
    if data.startswith(b"P7"):
        head, pixels = data.split(b"ENDHDR\n", 1)
        fields = dict(line.split(b" ", 1) for line in head.split(b"\n")[1:] if b" " in line)
        w, h, c, maxval = (int(fields[k]) for k in (b"WIDTH", b"HEIGHT", b"DEPTH", b"MAXVAL"))
    else:
        magic, dims, maxval, pixels = data.split(b"\n", 3)
        (w, h), c, maxval = (
            (int(v) for v in dims.split()),
            (1 if magic == b"P5" else 3),
            int(maxval),
        )
    dtype = np.dtype(">u2") if maxval > 255 else np.dtype(np.uint8)
    return np.frombuffer(pixels, dtype=dtype).reshape(h, w, c)


@pytest.mark.skipif(CC is None, reason="no C compiler")
def test_example_program_decodes_every_mode(tmp_path: Path) -> None:
    """nmem_decode (through native/examples/nmem_to_ppm.c) on lossless 8/16-bit, near-lossless
    RGBA and a lossy RGBA file: the pixels of neural_memory.decode."""
    import neural_memory as nm
    from neural_memory.container.nmem import Header, Mode, pack

    exe = tmp_path / "nmem_to_ppm"
    example = ROOT / "native" / "examples" / "nmem_to_ppm.c"
    subprocess.run([CC, *CFLAGS, "-O2", *NATIVE_SOURCES, str(example), "-o", str(exe)], check=True)
    alpha = synthetic(32, 32, 1, 8, seed=9)
    lossy_rgba = pack(
        Header(Mode.LOSSY, 32, 32, 4, 8),
        {
            "LOSY": (GOLDEN_DIR / "lossy_kodim23_32x32.bin").read_bytes(),
            "ALPH": encode_lossless_numba(alpha, 8, 0),
        },
    )
    files = {
        "gray16": nm.encode(synthetic(9, 13, 1, 16, seed=3), mode="lossless"),
        "rgb8": nm.encode(synthetic(10, 12, 3, 8, seed=4), mode="lossless"),
        "rgba_near": nm.encode(synthetic(11, 7, 4, 8, seed=5), mode="near-lossless", near=3),
        "lossy_rgba": lossy_rgba,
    }
    for name, data in files.items():
        src, out = tmp_path / f"{name}.nmem", tmp_path / f"{name}.pnm"
        src.write_bytes(data)
        subprocess.run([str(exe), str(src), str(out)], check=True)
        want = nm.decode(data)
        np.testing.assert_array_equal(_read_pnm(out.read_bytes()), want, err_msg=name)
    assert np.array_equal(nm.decode(lossy_rgba)[:, :, 3:], alpha)
