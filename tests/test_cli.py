"""The command line, run in a subprocess as a user would: exit codes and one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import neural_memory as nm


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "neural_memory", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, fragment: str) -> None:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("neural-memory: error:")
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr


def test_version_names_the_format() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert f"format version {nm.FORMAT_VERSION}" in result.stdout


def test_lossless_encode_info_decode(png_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "image.nmem"
    result = run("encode", str(png_path), "--lossless", "-o", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    info = run("info", str(out))
    assert "lossless" in info.stdout and "DATA" in info.stdout and "32x24" in info.stdout
    back = tmp_path / "back.png"
    result = run("decode", str(out), "-o", str(back))
    assert result.returncode == 0, result.stderr
    assert np.array_equal(nm.load_image(back), nm.load_image(png_path))


def test_default_output_names_and_no_overwrite(png_path: Path) -> None:
    assert run("encode", str(png_path), "--near-lossless", "2", "--quiet").returncode == 0
    nmem = png_path.with_suffix(".nmem")
    assert nmem.is_file()
    assert_one_line_error(run("encode", str(png_path), "--lossless", "--quiet"), "exists")
    before = png_path.read_bytes()
    # decoding to the default name would hit the original image.png: refused, input intact
    assert_one_line_error(run("decode", str(nmem)), "exists")
    assert png_path.read_bytes() == before


def test_bad_inputs_give_one_line_errors(tmp_path: Path, png_path: Path) -> None:
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"hello")
    assert_one_line_error(run("encode", str(junk), "--lossless"), "cannot read image")
    assert_one_line_error(run("encode", str(tmp_path / "none.png")), "no such image")
    assert_one_line_error(run("decode", str(junk), "-o", str(tmp_path / "o.png")), "magic")
    out = tmp_path / "t.nmem"
    assert run("encode", str(png_path), "--lossless", "-o", str(out), "--quiet").returncode == 0
    truncated = tmp_path / "cut.nmem"
    truncated.write_bytes(out.read_bytes()[:-7])
    assert_one_line_error(run("decode", str(truncated), "-o", str(tmp_path / "o.png")), "")
    assert not (tmp_path / "o.png").exists()
    assert_one_line_error(
        run("encode", str(png_path), "--near-lossless", "0", "-o", str(tmp_path / "z.nmem")),
        "K >= 1",
    )
    missing_dir = tmp_path / "nope" / "x.nmem"
    assert_one_line_error(run("encode", str(png_path), "--lossless", "-o", str(missing_dir)), "")


def test_usage_errors_exit_2() -> None:
    assert run("encode").returncode == 2
    assert run("decode", "x.nmem", "--size", "12by5").returncode == 2


def main_in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The CLI's ``main`` in this process (for the lossy commands: PyTorch and the JIT caches
    load once for the whole test run instead of once per subprocess)."""
    from neural_memory.cli import main

    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_lossy_encode_info_decode(
    png_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "lossy.nmem"
    code, stdout, stderr = main_in_process(
        capsys, "encode", str(png_path), "--lambda", "0.003", "--steps", "20", "-o", str(out)
    )
    assert code == 0, stderr
    assert "lossy" in stdout and "bpp" in stdout and "PSNR" in stdout
    assert "lossy" in run("info", str(out)).stdout
    back = tmp_path / "back.png"
    assert run("decode", str(out), "-o", str(back), "--quiet").returncode == 0
    assert nm.load_image(back).shape == nm.load_image(png_path).shape


def test_option_errors_name_the_flag(
    png_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "x.nmem")
    for flags, message in (
        (["--near-lossless", "256"], "--near-lossless K / near= must be at most 255"),
        (["--lossless", "--bpp", "1"], "--bpp / bpp= applies to lossy mode only"),
        (["--lambda", "20"], "--lambda / lmbda= must be in (0, 10)"),
        (["--steps", "0"], "--steps / steps= must be in [1, "),
    ):
        code, _, stderr = main_in_process(capsys, "encode", str(png_path), *flags, "-o", out)
        assert code == 1 and stderr.count("\n") == 1, stderr
        assert stderr.startswith("neural-memory: error: ") and message in stderr, stderr
    code, _, stderr = main_in_process(capsys, "encode", str(png_path), "--near-lossless", "255")
    assert code == 0, stderr


def test_preset_help_quotes_steps_not_timings() -> None:
    from neural_memory.options import PRESET_STEPS

    text = " ".join(run("encode", "--help").stdout.split())
    assert ", ".join(f"{k} {v}" for k, v in PRESET_STEPS.items()) in text
    assert " min " not in text and "110 s" not in text


def test_demo_runs_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, stderr = main_in_process(
        capsys, "demo", "--steps", "3", "--outdir", str(tmp_path / "demo")
    )
    assert code == 0, stderr
    assert "neural-memory lossy" in stdout and "JPEG at the same size" in stdout
    for name in ("parrots.nmem", "parrots-decoded.png", "parrots-lossless.nmem"):
        assert (tmp_path / "demo" / name).stat().st_size > 0, name
    assert (tmp_path / "demo" / "memory" / "face96.nmem").is_file()
