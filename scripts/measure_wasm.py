"""Decode times of the WebAssembly decoder (web/nmem.js) in headless Chromium.

    python scripts/measure_wasm.py FILE.nmem ... [--repeat 7]

Builds the module into a temporary folder (scripts/build_wasm.sh), serves it with the files
on 127.0.0.1, decodes each file once to warm up and then --repeat times in the page, and prints
one line per file: size, mode, the module's size, and the median and best decode times
(decodeNmem: copy in, decode, RGBA conversion, copy out). Nothing in the checkout is written.
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import subprocess
import tempfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PAGE = """<!doctype html><meta charset=utf-8><script type=module>
import { init, decodeNmem } from "./nmem.js";
const { names, repeat } = await (await fetch("job.json")).json();
const out = {};
try {
  await init();
  for (const name of names) {
    const bytes = new Uint8Array(await (await fetch("files/" + name)).arrayBuffer());
    const img = await decodeNmem(bytes);
    const times = [];
    for (let i = 0; i < repeat; i++) {
      const t0 = performance.now();
      await decodeNmem(bytes);
      times.push(performance.now() - t0);
    }
    out[name] = { width: img.width, height: img.height, channels: img.channels,
                  bitDepth: img.bitDepth, mode: img.mode, times };
  }
} catch (e) {
  out.error = String(e);
}
await fetch("/result", { method: "POST", body: JSON.stringify(out) });
</script>
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp)
        subprocess.run(["bash", str(ROOT / "scripts" / "build_wasm.sh"), str(site / "nmem.wasm")],
                       check=True, capture_output=True)  # fmt: skip
        shutil.copy(ROOT / "web" / "nmem.js", site / "nmem.js")
        (site / "files").mkdir()
        names = []
        for i, path in enumerate(args.files):
            names.append(f"{i}_{path.name}")
            shutil.copy(path, site / "files" / names[-1])
        (site / "job.json").write_text(json.dumps({"names": names, "repeat": args.repeat}))
        (site / "index.html").write_text(PAGE)

        done, posted = threading.Event(), {}

        class Handler(SimpleHTTPRequestHandler):
            def guess_type(self, path) -> str:
                return "text/javascript" if str(path).endswith(".js") else super().guess_type(path)

            def do_POST(self) -> None:
                posted.update(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()
                done.set()

            def log_message(self, *a) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=tmp))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--no-proxy-server", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip
        browser = subprocess.Popen(
            [args.chromium, *flags, f"--user-data-dir={site / 'profile'}",
             f"http://127.0.0.1:{server.server_address[1]}/index.html"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            if not done.wait(600):
                raise SystemExit("no result from chromium within 600 s")
        finally:
            browser.terminate()
            browser.wait(30)
            server.shutdown()
        if "error" in posted:
            raise SystemExit(posted["error"])
        wasm_size = (site / "nmem.wasm").stat().st_size
        version = subprocess.run([args.chromium, "--version"], capture_output=True, text=True)
        print(f"{version.stdout.strip()}; nmem.wasm {wasm_size} bytes")
        for name, path in zip(names, args.files, strict=True):
            r = posted[name]
            times = sorted(r["times"])
            print(
                f"{path.name}: {path.stat().st_size} bytes, {r['width']}x{r['height']}x"
                f"{r['channels']} {r['bitDepth']}-bit {r['mode']}: median "
                f"{times[len(times) // 2]:.1f} ms, best {times[0]:.1f} ms ({len(times)} runs)"
            )


if __name__ == "__main__":
    main()
