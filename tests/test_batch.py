"""Batches: folders mirrored, per-file errors, resume, local pool and a real Dask cluster."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import smooth_image
from neural_memory.batch import encode_job, plan, run_batch
from neural_memory.options import EncodeOptions


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    for i, rel in enumerate(["a.png", "b.png", "sub/c.png"]):
        Image.fromarray(smooth_image(12 + i, 16, 3, seed=i)).save(root / rel)
    (root / "notes.txt").write_text("not an image")
    return root


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "neural_memory", *args], capture_output=True, text=True, timeout=300
    )


def test_folder_batch_mirrors_tree_and_resumes(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = cli("encode", str(tree), "--lossless", "-o", str(out), "-j", "2")
    assert result.returncode == 0, result.stderr
    made = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.nmem"))
    assert made == ["a.nmem", "b.nmem", "sub/c.nmem"]
    assert "3 done, 0 skipped" in result.stdout and "exact" in result.stdout
    (out / "b.nmem").unlink()
    again = cli("encode", str(tree), "--lossless", "-o", str(out), "-j", "1")
    assert "1 done, 2 skipped" in again.stdout, again.stdout
    back = tmp_path / "back"
    decoded = cli("decode", str(out), "-o", str(back))
    assert decoded.returncode == 0, decoded.stderr
    for rel in ["a", "b", "sub/c"]:
        original = np.asarray(Image.open(tree / f"{rel}.png"))
        assert np.array_equal(np.asarray(Image.open(back / f"{rel}.png")), original)


def test_a_glob_mirrors_the_tree_below_its_fixed_part(tree: Path, tmp_path: Path) -> None:
    Image.fromarray(smooth_image(9, 9, 3, seed=5)).save(tree / "sub" / "a.png")
    jobs = plan(
        [str(tree / "**" / "*.png")], tmp_path / "out", suffixes={".png"}, new_suffix=".nmem"
    )
    made = sorted(job.output.relative_to(tmp_path / "out").as_posix() for job in jobs)
    assert made == ["a.nmem", "b.nmem", "sub/a.nmem", "sub/c.nmem"]
    named = plan([tree / "sub" / "c.png"], tmp_path / "o2", suffixes={".png"}, new_suffix=".nmem")
    assert [job.output for job in named] == [tmp_path / "o2" / "c.nmem"]


def test_a_bad_file_is_reported_and_the_batch_goes_on(tree: Path, tmp_path: Path) -> None:
    (tree / "broken.png").write_bytes(b"\x89PNG broken")
    out = tmp_path / "out"
    result = cli("encode", str(tree / "*.png"), "--lossless", "-o", str(out), "-j", "1")
    assert result.returncode == 1
    assert "failed" in result.stdout and "broken.png" in result.stdout
    assert (out / "a.nmem").is_file() and (out / "b.nmem").is_file()
    assert "Traceback" not in result.stderr


def test_pool_and_sequential_give_identical_bytes(tree: Path, tmp_path: Path) -> None:
    options = EncodeOptions(mode="near-lossless", near=2)
    seq = plan([tree], tmp_path / "seq", suffixes={".png"}, new_suffix=".nmem")
    par = plan([tree], tmp_path / "par", suffixes={".png"}, new_suffix=".nmem")
    assert run_batch(seq, encode_job, options, workers=1).ok
    assert run_batch(par, encode_job, options, workers=2).ok
    for a, b in zip(seq, par, strict=True):
        assert a.output.read_bytes() == b.output.read_bytes()


def test_dask_cluster_batch_matches_local(tree: Path, tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    local = tmp_path / "local"
    assert cli("encode", str(tree), "--lossless", "-o", str(local), "--quiet").returncode == 0
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        remote = tmp_path / "remote"
        result = cli(
            "encode",
            str(tree),
            "--lossless",
            "-o",
            str(remote),
            "--cluster",
            cluster.scheduler_address,
        )
        assert result.returncode == 0, result.stderr
    for path in local.rglob("*.nmem"):
        assert (remote / path.relative_to(local)).read_bytes() == path.read_bytes()


def test_unreachable_cluster_is_a_clear_error(tree: Path, tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    result = cli(
        "encode",
        str(tree),
        "--lossless",
        "-o",
        str(tmp_path / "o"),
        "--cluster",
        "tcp://127.0.0.1:9",
    )
    assert result.returncode == 1
    assert "Dask scheduler" in result.stderr and "Traceback" not in result.stderr


def test_unwritable_output_folder_fails_that_file_only(tree: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    jobs = plan([tree], tmp_path / "out", suffixes={".png"}, new_suffix=".nmem")
    jobs[0] = type(jobs[0])(jobs[0].source, blocker / "x.nmem")
    summary = run_batch(jobs, encode_job, EncodeOptions(mode="lossless"), workers=1)
    assert [r.status for r in summary.results] == ["failed", "done", "done"]
    assert summary.results[0].error


def test_lossy_pool_batch_with_a_cold_numba_cache(tmp_path: Path) -> None:
    """A lossy batch of two workers on a machine whose numba cache is empty: the parent has
    imported numba before forking (checking that cache), and a worker that then changed
    NUMBA_NUM_THREADS failed on its first compile ("Cannot set NUMBA_NUM_THREADS to a
    different value once the threads have been launched")."""
    import os

    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(smooth_image(24, 20, seed=i)).save(folder / f"{i}.png")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))
    result = subprocess.run(
        [sys.executable, "-m", "neural_memory", "encode", str(folder), "-o", str(tmp_path / "out"),
         "--steps", "2", "-j", "2", "--quiet"],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0.nmem", "1.nmem"]
