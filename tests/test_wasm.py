"""The C decoder compiled to WebAssembly (scripts/build_wasm.sh, web/nmem.js, web/index.html),
built fresh and run in headless Chromium: the golden files of every mode (lossy, lossless 8 and
16 bits, near-lossless RGBA) decode to their pinned sample hashes, the RGBA for the canvas is
the documented conversion of those samples, bad files throw the C library's message (and the
module keeps working), and the page shows a file given to its file input and an error line for
a corrupt one dropped on it."""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from neural_memory.container import Header, Mode, pack

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).parent
GOLDEN_DIR = TESTS / "golden"
PACKAGES = "apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32"


def _load(name: str):
    """Another test module, for the values it owns (pinned hashes, the chromium helper)."""
    spec = importlib.util.spec_from_file_location(f"_wasm_{name}", TESTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _lossy_golden_sha(name: str = "GOLDEN_SHA256") -> str:
    """tests/test_native.py's pin ``name`` of a lossy golden's pixels (read, not imported: that
    module imports the numba reference decoder)."""
    text = (TESTS / "test_native.py").read_text()
    return re.search(rf'^{name} = "([0-9a-f]{{64}})"$', text, re.M).group(1)


def _wasm_toolchain_or_skip(tmp_path: Path) -> None:
    """Skip (fail in CI) when clang cannot link a wasm32-wasi reactor module here."""
    clang = shutil.which(os.environ.get("CC_WASM") or "clang")
    why = None
    if clang is None:
        why = "clang is not installed"
    elif shutil.which("wasm-ld") is None:
        why = "wasm-ld is not installed"
    else:
        probe = tmp_path / "probe.c"
        probe.write_text("#include <stdlib.h>\nvoid *f(size_t n) { return malloc(n); }\n")
        sysroot = (
            [f"--sysroot={os.environ['WASI_SYSROOT']}"] if os.environ.get("WASI_SYSROOT") else []
        )
        run = subprocess.run(
            [
                clang,
                "--target=wasm32-wasi",
                *sysroot,
                "-O2",
                "-mexec-model=reactor",
                str(probe),
                "-o",
                str(tmp_path / "probe.wasm"),
            ],
            capture_output=True,
            text=True,
        )
        if run.returncode != 0:
            errors = [line for line in run.stderr.splitlines() if "error" in line]
            why = f"clang cannot link for wasm32-wasi ({(errors or ['?'])[0].strip()})"
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"{why} in CI: .ci/run must {PACKAGES}")
        pytest.skip(f"{why}: {PACKAGES} (Debian)")


def _sections(wasm: bytes) -> dict[int, int]:
    """The module's section ids and their sizes (the binary format's header and LEB128 sizes)."""
    assert wasm[:8] == b"\0asm\1\0\0\0"
    pos, found = 8, {}
    while pos < len(wasm):
        sid, size, shift = wasm[pos], 0, 0
        pos += 1
        while True:
            byte = wasm[pos]
            pos += 1
            size |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        found[sid] = size
        pos += size
    return found


def _expected_rgba(samples: np.ndarray) -> np.ndarray:
    """web/nmem.js's rgba: gray repeated, alpha 255 when absent, 16 bits to the nearest 8-bit
    value ((v * 255 + 32767) // 65535)."""
    if samples.dtype == np.uint16:
        samples = ((samples.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    h, w, c = samples.shape
    out = np.full((h, w, 4), 255, np.uint8)
    if c == 1:
        out[:, :, :3] = samples
    else:
        out[:, :, :c] = samples
    return out


def _cases() -> tuple[dict, dict]:
    """Golden .nmem files: name -> (bytes, (h, w, c, depth, near), pinned sha256, mode), and bad
    ones: name -> (bytes, decode options)."""
    lossy_payload = (GOLDEN_DIR / "lossy_kodim23_32x32.bin").read_bytes()
    good = {
        "lossy.nmem": (
            pack(Header(Mode.LOSSY, 32, 32, 3, 8), {"LOSY": lossy_payload}),
            (32, 32, 3, 8, 0),
            _lossy_golden_sha(),
            "lossy",
        ),
    }
    # payload version 3 (the per-stage filter table) and 4 (and the pre-concatenation filters)
    for v in (3, 4):
        payload = (GOLDEN_DIR / f"lossy_v{v}_kodim23_32x32.bin").read_bytes()
        good[f"lossy_v{v}.nmem"] = (
            pack(Header(Mode.LOSSY, 32, 32, 3, 8), {"LOSY": payload}),
            (32, 32, 3, 8, 0),
            _lossy_golden_sha(f"GOLDEN_V{v}_SHA256"),
            "lossy",
        )
    for name, (h, w, c, depth, near, sha) in sorted(_load("test_lossless").GOLDEN_CASES.items()):
        mode = Mode.NEAR_LOSSLESS if near else Mode.LOSSLESS
        data = pack(Header(mode, w, h, c, depth, near), {"DATA": (GOLDEN_DIR / name).read_bytes()})
        label = "near-lossless" if near else "lossless"
        good[name.replace(".bin", ".nmem")] = (data, (h, w, c, depth, near), sha, label)
    lossless = good["lossless_rgb_near0.nmem"][0]
    rgb_payload = (GOLDEN_DIR / "lossless_rgb_near0.bin").read_bytes()
    bad = {
        "truncated.nmem": (good["lossy.nmem"][0][:-7], {}),
        "bitflip.nmem": (lossless[:60] + bytes([lossless[60] ^ 0x10]) + lossless[61:], {}),
        # a valid container (CRC and all) around half of a lossless payload: the engine notices
        "cut_payload.nmem": (
            pack(
                Header(Mode.LOSSLESS, 32, 24, 3, 8), {"DATA": rgb_payload[: len(rgb_payload) // 2]}
            ),
            {},
        ),
        "not_nmem.png": (b"\x89PNG\r\n\x1a\n" + bytes(64), {}),
        # 2^28 pixels, above the default limit of 2^26: refused before anything is allocated
        "huge.nmem": (
            pack(Header(Mode.LOSSLESS, 16384, 16384, 3, 8), {"DATA": b"\x03" + bytes(16)}),
            {},
        ),
        "over_limit.nmem": (good["lossy.nmem"][0], {"maxPixels": 1000}),
    }
    return good, bad


def _serve(root: Path):
    """A localhost http server for root (Chromium loads no modules or wasm from file://) that
    keeps the JSON posted to /result."""
    done, posted = threading.Event(), {}

    class Handler(SimpleHTTPRequestHandler):
        def guess_type(self, path) -> str:
            types = {".js": "text/javascript", ".wasm": "application/wasm", ".html": "text/html"}
            return types.get(Path(path).suffix) or super().guess_type(path)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            posted["result"] = json.loads(body)
            self.send_response(204)
            self.end_headers()
            done.set()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, done, posted


def test_wasm_decoder_in_chromium(tmp_path: Path) -> None:
    chromium = _load("test_bench_html")._chromium()
    _wasm_toolchain_or_skip(tmp_path)
    site = tmp_path / "site"
    web = site / "web"
    web.mkdir(parents=True)
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "build_wasm.sh"), str(web / "nmem.wasm")],
        check=True,
        capture_output=True,
    )
    wasm = (web / "nmem.wasm").read_bytes()
    assert 2 not in _sections(wasm), "the module imports something: web/nmem.js gives it none"
    for name in ("nmem.js", "index.html"):
        shutil.copy(ROOT / "web" / name, web / name)

    good, bad = _cases()
    files = site / "files"
    files.mkdir()
    for name, (data, *_rest) in good.items():
        (files / name).write_bytes(data)
    for name, (data, _options) in bad.items():
        (files / name).write_bytes(data)
    (site / "cases.json").write_text(
        json.dumps(
            {
                "good": list(good),
                "bad": [[name, options] for name, (_data, options) in bad.items()],
                "repeat": 3,
                "page_good": "lossy.nmem",  # opaque: a canvas reads back exactly what it was given
                "page_bad": "cut_payload.nmem",
            }
        )
    )
    shutil.copy(TESTS / "data" / "wasm_harness.html", site / "harness.html")

    server, done, posted = _serve(site)
    url = f"http://127.0.0.1:{server.server_address[1]}/harness.html"
    browser = subprocess.Popen(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--no-proxy-server",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            url,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        finished = done.wait(90)
    finally:
        browser.terminate()
        try:
            _, log = browser.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            browser.kill()
            _, log = browser.communicate()
        server.shutdown()
        server.server_close()
    assert finished, f"the test page posted no result; chromium said:\n{log[-3000:]}"
    result = posted["result"]
    assert "fatal" not in result, result["fatal"]

    for name, (_data, (h, w, c, depth, near), sha, mode) in good.items():
        got = result["decoded"][name]
        assert (got["width"], got["height"], got["channels"], got["bitDepth"]) == (w, h, c, depth)
        assert (got["mode"], got["near"]) == (mode, near), name
        assert got["samplesType"] == ("Uint16Array" if depth == 16 else "Uint8Array")
        assert got["rgbaType"] == "Uint8ClampedArray"
        raw = base64.b64decode(got["samples"])
        # the pinned hashes are of the samples in little-endian order (wasm's order)
        assert hashlib.sha256(raw).hexdigest() == sha, f"{name}: pixels differ from the pin"
        samples = np.frombuffer(raw, "<u2" if depth == 16 else np.uint8).reshape(h, w, c)
        rgba = np.frombuffer(base64.b64decode(got["rgba"]), np.uint8).reshape(h, w, 4)
        np.testing.assert_array_equal(rgba, _expected_rgba(samples), err_msg=name)

    expected_errors = {  # name -> (status, a piece of the C library's message)
        "truncated.nmem": (2, "truncated"),
        "bitflip.nmem": (2, "checksum mismatch"),
        "cut_payload.nmem": (2, "lossless"),
        "not_nmem.png": (2, "not a neural-memory (.nmem) file"),
        "huge.nmem": (3, "pixel limit"),
        "over_limit.nmem": (3, "pixel limit"),
    }
    for name, (status, text) in expected_errors.items():
        err = result["errors"][name]
        assert err.get("name") == "NmemError", f"{name}: {err}"
        assert err["status"] == status and text in err["message"], f"{name}: {err}"
        assert err["statusName"] in ("bad file", "image over the pixel limit")
    assert base64.b64decode(result["after"]) == base64.b64decode(
        result["decoded"]["lossy.nmem"]["samples"]
    )

    page = result["page"]
    first = result["decoded"]["lossy.nmem"]
    assert page["good"]["state"] == "shown" and page["good"]["error"] == "", page["good"]
    assert (page["good"]["width"], page["good"]["height"]) == (32, 32)
    assert page["good"]["pixels"] == first["rgba"], "the canvas does not show the decoded pixels"
    assert "32 × 32" in page["good"]["info"] and "lossy" in page["good"]["info"]
    assert page["bad"]["state"] == "error" and not page["bad"]["shown"], page["bad"]
    message = result["errors"]["cut_payload.nmem"]["message"]
    assert page["bad"]["error"] == f"Cannot decode cut_payload.nmem: {message}"
