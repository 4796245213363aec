"""The HTML benchmark page, rendered in a real headless browser (Debian's chromium)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

FIXTURES = Path(__file__).parent / "data" / "bench"


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI"):
        pytest.fail("chromium is missing in CI: .ci/run must install it")
    pytest.skip("chromium is not installed (apt-get install chromium)")


def test_html_report_renders_with_content(tmp_path: Path) -> None:
    from neural_memory.cli import main

    out = tmp_path / "run"
    code = main(
        [
            "bench",
            str(FIXTURES),
            "--out",
            str(out),
            "--codecs",
            "jpeg-420,webp,png",
            "--jobs",
            "0",
            "--no-progress",
            "--html",
            "--settings",
            "jpeg-420=30,60,90",
            "--settings",
            "webp=30,60,90",
        ]
    )
    assert code == 0
    page = out / "report.html"
    text = page.read_text()
    assert "<table>" in text and "data:image/png;base64," in text and "id=slider" in text
    assert "JPEG" in text and "WebP" in text
    # the rate-distortion plots are on the page (their keys once differed from the plot code's)
    assert "<img class=plot alt='rd_psnr'" in text and "<img class=plot alt='rd_msssim'" in text

    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1000,1400",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    non_white = np.mean(pixels < 200)
    assert pixels.std() > 20, "screenshot is (nearly) uniform: the page rendered blank"
    assert non_white > 0.02, f"only {non_white:.1%} of the page has content"
