"""The native core (native/, built into neural_memory._native): bit-exact with the numba
reference decoder, a container parser that accepts exactly what the Python one accepts, C unit
tests under AddressSanitizer + UndefinedBehaviorSanitizer, and the C example program."""

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

from neural_memory import native
from neural_memory.container import Header, Mode, pack, unpack
from neural_memory.errors import FormatError, OptionError
from neural_memory.lossy.decoding.decoder import decode_lossy
from neural_memory.lossy.decoding.reference import decode_lossy_reference

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "lossy_kodim23_32x32.bin"
GOLDEN_SHA256 = "27581a2be9bb97383144c4752cf2c397c62c41bba322b923a5a6260712bd8ed0"
# payload version 3 (the sharper upsampling filters), made by make_lossy_golden.py --version 3
GOLDEN_V3 = ROOT / "tests" / "golden" / "lossy_v3_kodim23_32x32.bin"
GOLDEN_V3_SHA256 = "14b8554b3387a90f145cdd3ce9f6643defc28a024a017529e5047c2647654dd1"
# payload version 4 (and the pre-concatenation filters): make_lossy_golden.py --version 4
GOLDEN_V4 = ROOT / "tests" / "golden" / "lossy_v4_kodim23_32x32.bin"
GOLDEN_V4_SHA256 = "c49ee31d35d166922cbff75ff6e71764247dddb1ec2c784e9461b1a1bfcdf3a7"
GOLDENS = [(GOLDEN, GOLDEN_SHA256), (GOLDEN_V3, GOLDEN_V3_SHA256), (GOLDEN_V4, GOLDEN_V4_SHA256)]
CC = shutil.which("gcc") or shutil.which("cc")
NATIVE_SOURCES = sorted(str(p) for p in (ROOT / "native" / "src").glob("*.c"))
CFLAGS = ["-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{ROOT / 'native' / 'include'}"]
needs_cc = pytest.mark.skipif(CC is None, reason="no C compiler")


def _golden_file() -> bytes:
    return pack(Header(Mode.LOSSY, 32, 32, 3, 8), {"LOSY": GOLDEN.read_bytes()})


def _same(payload: bytes, h: int, w: int, c: int, size=None) -> None:
    """C and numba both decode to the same pixels, or both raise FormatError."""
    try:
        ref = decode_lossy_reference(payload, h, w, c, size)
    except FormatError:
        with pytest.raises(FormatError):
            decode_lossy(payload, h, w, c, size)
        return
    out = decode_lossy(payload, h, w, c, size)
    assert out.shape == ref.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out, ref)


def test_extension_is_built_from_these_sources():
    spec = importlib.util.spec_from_file_location("nm_setup", ROOT / "setup.py")
    setup_py = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(setup_py)
    assert setup_py.source_hash() == native.SOURCE_HASH, (
        "neural_memory._native is stale: rebuild it (bash scripts/setup.sh, or "
        "python setup.py build_ext --inplace)"
    )


def test_generated_tables_are_current():
    from neural_memory.entropy.laplace import TABLE_SHA256

    spec = importlib.util.spec_from_file_location("gen", ROOT / "scripts" / "gen_native_tables.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert gen.TABLE_SHA256 == TABLE_SHA256
    assert (ROOT / "native" / "src" / "tables.c").read_text() == gen.render()


@pytest.mark.parametrize("golden, sha", GOLDENS)
def test_golden_pixels_and_numba_agreement(golden: Path, sha: str):
    payload = golden.read_bytes()
    out = decode_lossy(payload, 32, 32, 3)
    assert hashlib.sha256(out.tobytes()).hexdigest() == sha
    for size in [None, (56, 48), (14, 12), (32, 17), (1, 1), (100, 3), (33, 32)]:
        _same(payload, 32, 32, 3, size)
    # the payload's header does not fix the image size: other declared sizes decode (or fail
    # when the stream runs out) identically, down to 1x1 and up to a 65536-pixel row
    for h, w in [(1, 1), (2, 1), (7, 9), (33, 31), (128, 3), (1, 5000), (65536, 1)]:
        _same(payload, h, w, 3)


@pytest.fixture(scope="module")
def fresh_payloads() -> list[tuple[bytes, tuple[int, int, int]]]:
    """Small images encoded now (a few training steps): several sizes, gray and colour, the
    default architecture and a small one."""
    pytest.importorskip("torch")
    import torch

    from conftest import smooth_image
    from neural_memory.lossy.decoding.bitstream import ArchConfig
    from neural_memory.lossy.encoding.encoder import fit
    from neural_memory.lossy.encoding.presets import grids
    from neural_memory.lossy.encoding.train import TrainConfig

    torch.set_num_threads(1)
    out = []
    for h, w, c, arm, syn, lmbda, table, filters in [
        (17, 23, 3, 16, (24,), 1e-3, 0, False),
        (40, 33, 1, 8, (20,), 3e-4, 1, True),  # payload version 4: the pre-filters
        (9, 70, 3, 16, (24,), 1e-2, 0, False),
        (64, 48, 3, 16, (24,), 1e-4, 1, True),
        (37, 29, 3, 16, (24,), 1e-3, 1, False),  # payload version 3: the sharper filters
        (5, 4, 3, 8, (12,), 1e-2, 1, True),  # grids smaller than a filter
    ]:
        img = smooth_image(h, w, c, seed=h)
        # 1e-2: the low-rate grids
        arch = ArchConfig(grids(c, lmbda), arm, syn, c, table, filters)
        payload = fit(img, arch, TrainConfig(steps=25), lmbda=lmbda)
        assert payload[0] == arch.version
        out.append((payload, (h, w, c)))
    return out


def test_fresh_encodes_agree_with_numba_at_several_sizes(fresh_payloads):
    for payload, (h, w, c) in fresh_payloads:
        for size in [None, (w * 2, h * 2), (max(1, w // 3), max(1, h // 2)), (w + 5, h), (7, 131)]:
            _same(payload, h, w, c, size)


def test_corrupted_payloads_fail_like_numba(fresh_payloads):
    rng = np.random.default_rng(1)
    for payload, (h, w, c) in fresh_payloads[:2]:
        for n in range(0, len(payload), max(1, len(payload) // 25)):
            with pytest.raises(FormatError):
                decode_lossy(payload[:n], h, w, c)
        for _ in range(40):
            bad = bytearray(payload)
            for i in rng.integers(0, len(bad), int(rng.integers(1, 4))):
                bad[i] ^= int(rng.integers(1, 256))
            _same(bytes(bad), h, w, c)


def test_pixel_limit_and_sizes():
    payload = GOLDEN.read_bytes()
    with pytest.raises(FormatError, match="pixel limit"):
        decode_lossy(payload, 32, 32, 3, max_pixels=32 * 32 - 1)
    assert decode_lossy(payload, 32, 32, 3, max_pixels=32 * 32).shape == (32, 32, 3)
    with pytest.raises(OptionError):
        decode_lossy(payload, 32, 32, 3, size=(64, 64), max_pixels=4000)
    with pytest.raises(OptionError):
        decode_lossy(payload, 32, 32, 3, size=(0, 5))
    with pytest.raises(FormatError):
        decode_lossy(payload, 32, 32, 2)
    # a header that claims a huge image is refused before any allocation
    with pytest.raises(FormatError, match="pixel limit"):
        decode_lossy(payload, 65536, 4096, 3)
    assert native.DEFAULT_MAX_PIXELS == 1 << 26


def test_filter_taps_over_the_bound_fail_like_numba():
    """Version 4 stores each level's pre-concatenation filter as (a, b, c); a kernel whose
    sum of |taps| exceeds 2**(q + 1) would break the decoders' integer bounds, so both refuse
    it (bitstream.prefilter_ok); one at the bound decodes, the same in both."""
    from neural_memory.lossy.decoding.bitstream import ArchConfig, QuantModule
    from neural_memory.lossy.encoding.encoder import build_payload

    arch = ArchConfig((0, 1, 2), 4, (6,), 3, up_table=1, prefilter=True)
    rng = np.random.default_rng(0)
    mods = [
        QuantModule(rng.integers(-20, 20, (n_in, n_out)), rng.integers(-20, 20, n_out), 6)
        for n_in, n_out in arch.module_shapes()
    ]
    levels = [rng.integers(-3, 4, (-(-9 // 2**lv), -(-11 // 2**lv))) for lv in (0, 1, 2)]

    def payload(abc) -> bytes:
        taps = QuantModule(np.array(abc, np.int64), np.zeros(0, np.int64), 8)
        return build_payload(arch, mods[:3], mods[3:], levels, taps)

    at_bound = payload([[0, 0, 0], [-64, 0, 0], [10, -20, 30]])  # (-64, .., 384, .., -64): 512
    _same(at_bound, 9, 11, 3)
    over = payload([[0, 0, 0], [-65, 0, 0], [10, -20, 30]])
    for decode in (decode_lossy, decode_lossy_reference):
        with pytest.raises(FormatError, match="filter taps"):
            decode(over, 9, 11, 3)
    with pytest.raises(ValueError, match="stored exactly"):  # a header without its filters
        build_payload(arch, mods[:3], mods[3:], levels)
    with pytest.raises(ValueError, match="no payload version"):  # filters come with table 1
        ArchConfig((0, 1, 2), 4, (6,), 3, up_table=0, prefilter=True)


def _mutations(data: bytes, rng: np.random.Generator, n: int):
    """Truncations, raw byte flips and flips with the CRC recomputed (to reach the checks that
    come before the checksum in both parsers)."""
    import zlib

    for k in range(len(data) + 1):
        yield data[:k]
    for _ in range(n):
        bad = bytearray(data)
        for i in rng.integers(0, len(bad), int(rng.integers(1, 3))):
            bad[i] = int(rng.integers(0, 256))
        yield bytes(bad)
        body = bytes(bad[:-4])
        yield body + zlib.crc32(body).to_bytes(4, "little")


def test_container_parser_matches_python():
    import neural_memory as nm

    rng = np.random.default_rng(0)
    files = [
        _golden_file(),
        nm.encode(np.arange(48, dtype=np.uint8).reshape(4, 4, 3), mode="lossless"),
        pack(Header(Mode.NEAR_LOSSLESS, 300, 2, 4, 16, param=3), {"DATA": b"x" * 200, "ICCP": b""}),
        pack(Header(Mode.LOSSLESS, 3, 2, 1), {"DATA": b"d", "EXIF": b"II*\0", "XMP_": b"<x/>"}),
    ]
    checked = 0
    for data in files:
        for bad in _mutations(data, rng, 400):
            try:
                c = unpack(bad)
            except FormatError:
                with pytest.raises(FormatError):
                    native.parse(bad)
                continue
            version, mode, width, height, channels, depth, param, sections = native.parse(bad)
            hd = c.header
            assert (version, mode, width, height, channels, depth, param) == (
                hd.version, int(hd.mode), hd.width, hd.height, hd.channels, hd.bit_depth, hd.param,
            )  # fmt: skip
            assert [t for t, _, _ in sections] == list(c.sections)
            assert all(bad[o : o + n] == c.sections[t] for t, o, n in sections)
            checked += 1
    assert checked >= len(files)


def test_lossy_decode_imports_neither_numba_nor_torch():
    code = (
        "import sys\n"
        "import neural_memory as nm\n"
        "from neural_memory.container import Header, Mode, pack\n"
        f"p = open({str(GOLDEN)!r}, 'rb').read()\n"
        "out = nm.decode(pack(Header(Mode.LOSSY, 32, 32, 3, 8), {'LOSY': p}))\n"
        "assert out.shape == (32, 32, 3)\n"
        "assert 'numba' not in sys.modules, 'lossy decoding imported numba'\n"
        "assert 'torch' not in sys.modules, 'lossy decoding imported torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@needs_cc
@pytest.mark.parametrize("sanitize", [False, True], ids=["plain", "asan-ubsan"])
@pytest.mark.parametrize("golden, sha", GOLDENS)
def test_c_unit_tests(tmp_path, sanitize, golden, sha):
    """The C library's unit tests (native/tests/test_nmem.c), with the lossy ones on each
    payload version's golden (truncations, bit flips, other sizes), plain and sanitized."""
    exe = tmp_path / "test_nmem"
    flags = ["-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
    flags = flags if sanitize else ["-O2", "-DNMEM_NO_CLONES"]
    cmd = [CC, *CFLAGS, *flags, f"-I{ROOT / 'native' / 'src'}", *NATIVE_SOURCES]
    test_src = ROOT / "native" / "tests" / "test_nmem.c"
    subprocess.run([*cmd, str(test_src), "-o", str(exe)], check=True)
    raw = tmp_path / "golden.raw"
    env = {**os.environ, "ASAN_OPTIONS": "detect_leaks=1", "UBSAN_OPTIONS": "print_stacktrace=1"}
    run = subprocess.run([str(exe), str(golden), str(raw)], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert hashlib.sha256(raw.read_bytes()).hexdigest() == sha


def _read_pnm(path: Path) -> np.ndarray:
    data = path.read_bytes()
    magic, dims, maxval, pixels = data.split(b"\n", 3)
    width, height = (int(v) for v in dims.split())
    assert maxval == b"255"
    channels = 3 if magic == b"P6" else 1
    return np.frombuffer(pixels, np.uint8).reshape(height, width, channels)


@needs_cc
def test_example_program_decodes_the_golden(tmp_path):
    exe = tmp_path / "nmem_to_ppm"
    example = ROOT / "native" / "examples" / "nmem_to_ppm.c"
    subprocess.run([CC, *CFLAGS, "-O2", *NATIVE_SOURCES, str(example), "-o", str(exe)], check=True)
    src = tmp_path / "golden.nmem"
    src.write_bytes(_golden_file())
    subprocess.run([str(exe), str(src), str(tmp_path / "out.ppm")], check=True)
    pixels = _read_pnm(tmp_path / "out.ppm")
    assert hashlib.sha256(pixels.tobytes()).hexdigest() == GOLDEN_SHA256
    subprocess.run([str(exe), str(src), str(tmp_path / "big.ppm"), "50", "41"], check=True)
    ref = decode_lossy_reference(GOLDEN.read_bytes(), 32, 32, 3, size=(50, 41))
    np.testing.assert_array_equal(_read_pnm(tmp_path / "big.ppm"), ref)
    bad = tmp_path / "bad.nmem"
    bad.write_bytes(_golden_file()[:-1])
    run = subprocess.run([str(exe), str(bad), str(tmp_path / "x.ppm")], capture_output=True)
    assert run.returncode == 1 and (b"truncated" in run.stderr or b"checksum" in run.stderr)
    limited = subprocess.run(
        [str(exe), str(src), str(tmp_path / "y.ppm")],
        capture_output=True,
        env={**os.environ, "NMEM_MAX_PIXELS": "1000"},
    )
    assert limited.returncode == 1 and b"pixel limit" in limited.stderr


def test_public_decode_takes_a_pixel_limit(tmp_path):
    import neural_memory as nm
    from neural_memory.cli import main
    from neural_memory.options import DEFAULT_MAX_DECODE_PIXELS

    assert native.DEFAULT_MAX_PIXELS == DEFAULT_MAX_DECODE_PIXELS
    lossy = _golden_file()
    lossless = nm.encode(np.zeros((8, 8, 3), np.uint8), mode="lossless")
    for data in (lossy, lossless):
        with pytest.raises(FormatError, match="max_pixels"):
            nm.decode(data, max_pixels=63)
        assert nm.decode(data, max_pixels=64 if data is lossless else 1024).shape[2] == 3
    with pytest.raises(OptionError, match="max_pixels"):
        nm.decode(lossy, scale=2, max_pixels=4000)
    with pytest.raises(OptionError):
        nm.decode(lossy, max_pixels=0)
    src = tmp_path / "golden.nmem"
    src.write_bytes(lossy)
    assert main(["decode", str(src), "-o", str(tmp_path / "a.png"), "--max-pixels", "100"]) == 1
    assert main(["decode", str(src), "-o", str(tmp_path / "b.png"), "--max-pixels", "1024"]) == 0


@needs_cc
@pytest.mark.parametrize("clones", [True, False], ids=["avx2-or-baseline", "baseline-only"])
def test_both_builds_of_the_hot_loops_agree_with_numba(tmp_path, fresh_payloads, clones):
    """The library compiled with and without the AVX2 clones of its hot loops (the Python
    extension uses the clones where the CPU has AVX2) decodes the fresh encodes like numba."""
    exe = tmp_path / "nmem_to_ppm"
    example = ROOT / "native" / "examples" / "nmem_to_ppm.c"
    flags = ["-O2"] if clones else ["-O2", "-DNMEM_NO_CLONES"]
    subprocess.run([CC, *CFLAGS, *flags, *NATIVE_SOURCES, str(example), "-o", str(exe)], check=True)
    for i, (payload, (h, w, c)) in enumerate(fresh_payloads):
        src = tmp_path / f"fresh{i}.nmem"
        src.write_bytes(pack(Header(Mode.LOSSY, w, h, c, 8), {"LOSY": payload}))
        for size in [None, (w * 2 + 1, h + 3)]:
            out = tmp_path / f"fresh{i}.pnm"
            extra = [] if size is None else [str(size[0]), str(size[1])]
            subprocess.run([str(exe), str(src), str(out), *extra], check=True)
            ref = decode_lossy_reference(payload, h, w, c, size)
            np.testing.assert_array_equal(_read_pnm(out), ref)
