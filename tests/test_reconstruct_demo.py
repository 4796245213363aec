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


def test_the_documented_demo_file_decodes_to_its_documented_figures():
    """docs/reconstruction.md shows this file; it must stay decodable by the current decoder
    (a payload version 1 file sat there unnoticed after version 1 was retired)."""
    import json

    import numpy as np

    from neural_memory.api import decode
    from neural_memory.images import load_image
    from neural_memory.metrics import psnr
    from neural_memory.samples import sample_path

    folder = Path(__file__).resolve().parents[1] / "docs" / "reconstruction" / "memory"
    summary = json.loads((folder / "face96-summary.json").read_text())
    data = (folder / "face96.nmem").read_bytes()
    rebuilt = decode(data)
    assert np.array_equal(rebuilt, load_image(folder / "face96-rebuilt.png"))
    assert len(data) == summary["network_bytes"]
    assert round(psnr(load_image(sample_path("face96.png")), rebuilt), 3) == summary["psnr_db"]
