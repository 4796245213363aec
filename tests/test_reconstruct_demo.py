"""The memory demo: a small photo stored in a network and rebuilt from it alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_memory.reconstruct import run_memory_demo


@pytest.mark.slow
def test_memory_demo_runs_and_is_deterministic(tmp_path: Path):
    first = run_memory_demo(tmp_path / "a")
    second = run_memory_demo(tmp_path / "b")
    for name in ("face96.nmem", "face96-montage.png", "face96-summary.txt"):
        assert (tmp_path / "a" / name).is_file()
    assert (tmp_path / "a" / "face96.nmem").read_bytes() == (
        tmp_path / "b" / "face96.nmem"
    ).read_bytes()
    assert first["psnr_db"] == second["psnr_db"] > 28
    assert first["network_bytes"] < first["png_bytes"] < first["bmp_bytes"]
