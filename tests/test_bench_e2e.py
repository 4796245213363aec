"""End-to-end run of the benchmark on two 48x48 Kodak crops with a few cheap codecs."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from neural_memory.bench import BenchConfig, add_bench_arguments, run_bench, run_benchmark

DATA = Path(__file__).parent / "data" / "bench"
CHEAP = {
    "jpeg-420": [20, 50, 90],
    "webp": [20, 50, 90],
    "j2k": [1.0, 2.0, 4.0],
    "jpegls-near": [1, 2],
}


def _config(out: Path, **kw) -> BenchConfig:
    return BenchConfig(
        images_dir=DATA,
        out_dir=out,
        codecs=["jpeg-420", "webp", "j2k", "png", "jpegls-hp1", "jpegls-near"],
        settings=CHEAP,
        jobs=2,
        progress=False,
        crop_size=32,
        **kw,
    )


def test_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    results = run_benchmark(_config(out))
    n_items = 2 * (3 + 3 + 3 + 1 + 1 + 2)
    assert len(results.ok()) == n_items
    for name in (
        "results.json",
        "results.jsonl",
        "report.md",
        "rd_psnr.png",
        "rd_msssim.png",
        "crops.png",
    ):
        assert (out / name).stat().st_size > 0, name
    assert (out / "rd_psnr.png").read_bytes()[:4] == b"\x89PNG"

    data = json.loads((out / "results.json").read_text())
    assert data["images"] == ["bench_kodim05_48.png", "bench_kodim23_48.png"]
    for rec in data["records"]:
        assert rec["bytes"] > 0 and rec["encode_s"] >= 0 and rec["peak_rss_mb"] > 0
        assert rec["bpp"] == 8 * rec["bytes"] / (48 * 48)
        if rec["mode"] == "lossy":
            assert 15 < rec["psnr"] < 70 and 0 < rec["ms_ssim"] <= 1
    png = data["aggregates"]["png"]["points"][0]
    assert png["all_exact"] and png["bpsp"] > 1
    near = {p["setting"]: p for p in data["aggregates"]["jpegls-near"]["points"]}
    assert near[1]["max_error"] <= 1 and near[2]["all_within_bound"]
    # Curves monotone in rate and BD-rate matrix filled with a zero diagonal.
    bd = data["bd_rate_psnr"]
    assert bd["webp"]["webp"] == 0.0 and bd["jpeg-420"]["webp"] is not None

    report = (out / "report.md").read_text()
    for heading in (
        "PSNR (dB) at fixed rates",
        "BD-rate",
        "Lossless",
        "Near-lossless",
        "Conventions",
        "library versions",
    ):
        assert heading in report


def test_resume_and_cli(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    run_benchmark(_config(out, plots=False))
    lines = (out / "results.jsonl").read_text().splitlines()
    # Drop the last two items, as if the run had been interrupted, then resume via the CLI.
    (out / "results.jsonl").write_text("\n".join(lines[:-2]) + "\n")
    parser = argparse.ArgumentParser()
    add_bench_arguments(parser)
    args = parser.parse_args(
        [
            str(DATA),
            "--out",
            str(out),
            "--resume",
            "--jobs",
            "1",
            "--no-plots",
            "--no-progress",
            "--codecs",
            "jpeg-420,webp,j2k,png,jpegls-hp1,jpegls-near",
        ]
        + [f"--settings={k}={','.join(map(str, v))}" for k, v in CHEAP.items()]
    )
    assert run_bench(args) == 0
    assert len((out / "results.jsonl").read_text().splitlines()) == len(lines)


def test_image_subset_by_name(tmp_path: Path, capsys) -> None:
    out = tmp_path / "bench"
    cfg = BenchConfig(
        images_dir=DATA,
        out_dir=out,
        codecs=["png"],
        images=["bench_kodim23_48"],
        jobs=1,
        progress=False,
        plots=False,
    )
    results = run_benchmark(cfg)
    assert [r["image"] for r in results.ok()] == ["bench_kodim23_48.png"]
    parser = argparse.ArgumentParser()
    add_bench_arguments(parser)
    args = parser.parse_args(
        [str(DATA), "--out", str(out), "--images", "kodim99", "--codecs", "png", "--no-plots"]
    )
    assert run_bench(args) == 2
    assert "kodim99" in capsys.readouterr().err


def test_report_only_reuses_the_decoded_crops(tmp_path: Path, monkeypatch) -> None:
    """The crop figure's re-encodes are kept, so a second report measures nothing."""
    from neural_memory.bench import plots

    out = tmp_path / "bench"
    run_benchmark(_config(out))
    kept = sorted(p.name for p in (out / "crops").iterdir())
    assert len(kept) == 3 and all(name.endswith("-32.png") for name in kept)  # 3 lossy codecs

    registered = plots.codec_registry.get_codec

    def no_encoding(*args):
        raise AssertionError("encoded again")

    def spec_that_cannot_encode(name: str):
        return dataclasses.replace(registered(name), encode=no_encoding, encoder_for=None)

    monkeypatch.setattr(plots.codec_registry, "get_codec", spec_that_cannot_encode)
    (out / "crops.png").unlink()
    results = run_benchmark(_config(out, report_only=True))
    assert len(results.ok()) == 2 * (3 + 3 + 3 + 1 + 1 + 2)
    assert (out / "crops.png").stat().st_size > 0


def test_a_fresh_run_drops_the_crops_of_the_old_records(tmp_path: Path) -> None:
    """Without --resume the records start again, and so must the pixels kept for them."""
    out = tmp_path / "bench"
    stale = out / "crops" / "webp-bench_kodim05_48-50-0-0-32.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"pixels of an older encoder")
    run_benchmark(_config(out, plots=False))
    assert not stale.exists()
