"""Everyday use (issue 17): conventions of cwebp / cjxl, standard streams, JSON, output
formats, metadata (ICC, EXIF, XMP), multi-frame and JPEG inputs, and the errors found by
fault injection. Images are tiny and lossy encodes run a handful of steps."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

import neural_memory as nm
from conftest import smooth_image
from neural_memory.cli import main

ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'


def exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    return exif.tobytes()


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "neural_memory", *args],
        capture_output=True,
        input=stdin,
        timeout=300,
    )


def in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(code: int, stderr: str, fragment: str) -> None:
    assert code == 1, stderr
    assert stderr.count("\n") == 1 and stderr.startswith("neural-memory: error: "), stderr
    assert fragment in stderr, stderr


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    """A PNG with an ICC profile, EXIF orientation 6 and XMP."""
    path = tmp_path / "photo.png"
    Image.fromarray(smooth_image(12, 16, 3)).save(path, icc_profile=ICC, exif=exif_rotated())
    return path


# -- conventions ---------------------------------------------------------------------------


def test_quality_maps_to_lambda_monotonically_and_sizes_follow() -> None:
    from neural_memory.options import quality_to_lmbda

    lambdas = [quality_to_lmbda(q) for q in range(0, 101, 10)]
    assert lambdas == sorted(lambdas, reverse=True)
    assert quality_to_lmbda(0) == pytest.approx(0.02)
    assert quality_to_lmbda(100) == pytest.approx(1e-4)
    # sizes follow up to training noise (about 100 B here between seeds at a low rate, where
    # the networks' bits dominate a tiny image): qualities far enough apart
    image = smooth_image(48, 64, 3)
    sizes = [len(nm.encode(image, quality=q, steps=4)) for q in (0, 75, 100)]
    assert sizes[0] < sizes[1] < sizes[2], sizes


def test_dash_q_is_quality_and_quiet_is_long(
    png_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "q.nmem"
    code, stdout, stderr = in_process(
        capsys, "encode", str(png_path), "-q", "80", "--steps", "3", "-o", str(out), "--quiet"
    )
    assert code == 0 and stdout == "" and stderr == "", stderr
    assert nm.read_info(out).mode == "lossy"
    code, _, stderr = in_process(capsys, "encode", str(png_path), "-q", "101", "-o", str(out))
    one_line_error(code, stderr, "-q / --quality / quality= must be in [0, 100]")
    code, _, stderr = in_process(
        capsys, "encode", str(png_path), "-e", "9", "--lossless", "-o", str(tmp_path / "e.nmem")
    )
    one_line_error(code, stderr, "--effort applies to lossy mode only")
    code, stdout, stderr = in_process(
        capsys, "encode", str(png_path), "--lossless", "-v", "-o", str(tmp_path / "v.nmem")
    )
    assert code == 0 and "options:" in stderr and "sections DATA" in stdout, stderr


def test_json_output_of_encode_decode_info_and_batches(
    png_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "j.nmem"
    code, stdout, _ = in_process(
        capsys, "encode", str(png_path), "--lossless", "-o", str(out), "--json"
    )
    record = json.loads(stdout)
    assert code == 0 and record["mode"] == "lossless" and record["max_error"] == 0
    assert record["output_bytes"] == out.stat().st_size and record["sections"]["DATA"] > 0
    code, stdout, _ = in_process(
        capsys, "decode", str(out), "-o", str(tmp_path / "j.png"), "--json"
    )
    assert code == 0 and json.loads(stdout)["width"] == 32
    code, stdout, _ = in_process(capsys, "info", str(out), "--json")
    assert code == 0 and json.loads(stdout)[0]["version"] == 1
    code, stdout, _ = in_process(
        capsys, "decode", str(tmp_path / "*.nmem"), "-o", str(tmp_path / "b"), "--json", "-j", "1"
    )
    batch = json.loads(stdout)
    assert code == 0 and batch["done"] == 1 and batch["files"][0]["status"] == "done"


def test_standard_input_and_output_round_trip(png_path: Path, tmp_path: Path) -> None:
    # the shell pipeline of the issue, as users type it (the old CLI wrote a file named "-")
    shell = (
        f"cat {png_path} | {sys.executable} -m neural_memory encode - -o - --lossless --quiet"
        f" | {sys.executable} -m neural_memory decode - -o {tmp_path / 'z.png'} --quiet"
    )
    assert subprocess.run(shell, shell=True, cwd=tmp_path, timeout=300).returncode == 0
    assert np.array_equal(nm.load_image(tmp_path / "z.png"), nm.load_image(png_path))
    assert not (tmp_path / "-").exists()
    missing = run("encode", "-", "--lossless", stdin=png_path.read_bytes())
    assert missing.returncode == 1 and b"give -o FILE or -o -" in missing.stderr


def test_output_formats(png_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import imagecodecs

    nmem = tmp_path / "f.nmem"
    assert main(["encode", str(png_path), "--lossless", "-o", str(nmem), "--quiet"]) == 0
    original = nm.load_image(png_path)
    # --format names a single file's output
    code, _, stderr = in_process(capsys, "decode", str(nmem), "--format", "webp")
    assert code == 0 and np.array_equal(nm.load_image(tmp_path / "f.webp"), original), stderr
    code, _, stderr = in_process(
        capsys, "decode", str(nmem), "-o", str(tmp_path / "a.png"), "--format", "tiff"
    )
    one_line_error(code, stderr, "does not match")
    # JPEG XL, lossless without -q
    code, _, stderr = in_process(capsys, "decode", str(nmem), "-o", str(tmp_path / "f.jxl"))
    assert code == 0, stderr
    assert np.array_equal(imagecodecs.jpegxl_decode((tmp_path / "f.jxl").read_bytes()), original)
    # a lossy target without -q says which quality it used; with -q it says nothing
    code, _, stderr = in_process(capsys, "decode", str(nmem), "-o", str(tmp_path / "f.jpg"))
    assert code == 0 and "quality 95" in stderr and "-q" in stderr, stderr
    error = np.abs(nm.load_image(tmp_path / "f.jpg").astype(int) - original).max()
    assert error < 34  # Pillow's silent default, q75, was 34 levels off on photos
    code, _, stderr = in_process(
        capsys, "decode", str(nmem), "-o", str(tmp_path / "g.avif"), "-q", "90"
    )
    assert code == 0 and "note" not in stderr and (tmp_path / "g.avif").stat().st_size > 0
    # GIF would quantise to 256 colours: refused before decoding
    code, _, stderr = in_process(capsys, "decode", str(nmem), "-o", str(tmp_path / "f.gif"))
    one_line_error(code, stderr, "256 colours")
    assert not (tmp_path / "f.gif").exists()


# -- inputs --------------------------------------------------------------------------------


def test_multi_frame_inputs_are_refused_or_one_frame_chosen(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames = [Image.fromarray(smooth_image(8, 8, 3, seed=i)) for i in range(3)]
    gif = tmp_path / "anim.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:])
    apng = tmp_path / "anim.png"
    frames[0].save(apng, save_all=True, append_images=frames[1:])
    for source in (gif, apng):
        code, _, stderr = in_process(
            capsys, "encode", str(source), "--lossless", "-o", str(tmp_path / "x.nmem")
        )
        one_line_error(code, stderr, "has 3 frames")
    out = tmp_path / "f1.nmem"
    code, _, stderr = in_process(
        capsys, "encode", str(apng), "--lossless", "--frame", "1", "-o", str(out)
    )
    assert code == 0, stderr
    assert np.array_equal(nm.decode(out), smooth_image(8, 8, 3, seed=1))
    code, _, stderr = in_process(
        capsys, "encode", str(apng), "--lossless", "--frame", "3", "-o", str(out) + "2"
    )
    one_line_error(code, stderr, "0 to 2")


def test_jpeg_input_to_lossless_warns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    jpeg = tmp_path / "p.jpg"
    Image.fromarray(smooth_image(16, 16, 3)).save(jpeg, quality=80)
    code, _, stderr = in_process(
        capsys, "encode", str(jpeg), "--lossless", "-o", str(tmp_path / "p.nmem")
    )
    assert code == 0 and "is a JPEG" in stderr and "larger than the JPEG" in stderr, stderr


# -- metadata ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["--lossless", "--steps=3"])
def test_icc_and_exif_orientation_survive_to_png_and_tiff(
    photo: Path, tmp_path: Path, mode: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import imagecodecs

    nmem = tmp_path / "m.nmem"
    assert main(["encode", str(photo), mode, "-o", str(nmem), "--quiet"]) == 0
    assert {"ICCP", "EXIF"} <= set(nm.read_info(nmem).sections)
    assert nm.read_info(nmem).version == 2
    for suffix in (".png", ".tiff", ".webp", ".jpg", ".avif"):
        out = tmp_path / f"m{suffix}"
        assert main(["decode", str(nmem), "-o", str(out), "--quiet"]) == 0
        with Image.open(out) as im:
            assert im.info.get("icc_profile") == ICC, suffix
            assert im.getexif().get(0x0112) == 6, suffix
            # orientation kept as a tag, not applied to the pixels (Pillow's TIFF reader
            # applies it itself, so the TIFF's stored size is read with imagecodecs)
            if suffix == ".tiff":
                assert imagecodecs.tiff_decode(out.read_bytes()).shape[:2] == (12, 16)
            else:
                assert im.size == (16, 12), suffix
    stripped = tmp_path / "s.png"
    assert main(["decode", str(nmem), "-o", str(stripped), "--strip", "--quiet"]) == 0
    with Image.open(stripped) as im:
        assert "icc_profile" not in im.info and 0x0112 not in im.getexif()
    batch = ["decode", str(tmp_path / "m*.nmem"), "-o", str(tmp_path / "b"), "-j", "1"]
    assert main([*batch, "--strip", "--quiet"]) == 0  # batches pass --strip to the workers
    with Image.open(tmp_path / "b" / "m.png") as im:
        assert "icc_profile" not in im.info
    bare = tmp_path / "bare.nmem"
    assert main(["encode", str(photo), mode, "--strip", "-o", str(bare), "--quiet"]) == 0
    assert set(nm.read_info(bare).sections) <= {"DATA", "LOSY"} and nm.read_info(bare).version == 1


def test_xmp_survives_and_api_reads_metadata(tmp_path: Path) -> None:
    source = tmp_path / "x.webp"
    Image.fromarray(smooth_image(6, 5, 3)).save(source, lossless=True, xmp=XMP, icc_profile=ICC)
    nm.encode_file(source, tmp_path / "x.nmem", mode="lossless")
    metadata = nm.read_metadata(tmp_path / "x.nmem")
    assert metadata.xmp == XMP and metadata.icc == ICC and metadata.exif is None
    for suffix in (".png", ".jpg", ".webp"):
        nm.decode_file(tmp_path / "x.nmem", tmp_path / f"back{suffix}")
        with Image.open(tmp_path / f"back{suffix}") as im:
            xmp = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
            assert (xmp.encode() if isinstance(xmp, str) else xmp) == XMP, suffix
    for suffix in (".tiff", ".avif"):  # written there too: read back through our own reader
        nm.decode_file(tmp_path / "x.nmem", tmp_path / f"back{suffix}")
        nm.encode_file(
            tmp_path / f"back{suffix}", tmp_path / f"again{suffix}.nmem", mode="lossless"
        )
        assert nm.read_metadata(tmp_path / f"again{suffix}.nmem").xmp == XMP, suffix


def test_api_keeps_a_pillow_images_metadata_and_notes_what_a_format_drops(
    photo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Image.open(photo) as im:
        data = nm.encode(im, mode="lossless")
        assert nm.read_metadata(data).icc == ICC
        assert nm.read_metadata(nm.encode(im, mode="lossless", strip=True)) == nm.Metadata()
    nmem = tmp_path / "d.nmem"
    nmem.write_bytes(data)
    code, _, stderr = in_process(capsys, "decode", str(nmem), "-o", str(tmp_path / "d.jxl"))
    assert code == 0 and "stores no colour profile" in stderr, stderr


def test_metadata_a_writer_cannot_parse_is_a_clear_error(tmp_path: Path) -> None:
    nmem = tmp_path / "junk.nmem"
    pixels = smooth_image(4, 5, 3)
    nmem.write_bytes(nm.encode(pixels, mode="lossless", metadata=nm.Metadata(exif=b"garbage!")))
    with pytest.raises(nm.OutputError, match="--strip"):
        nm.decode_file(nmem, tmp_path / "j.avif")
    assert not list(tmp_path.glob("*.avif"))
    nm.decode_file(nmem, tmp_path / "j.avif", options=nm.DecodeOptions(strip=True))


def test_pillow_plugin_metadata_and_webp_options(tmp_path: Path) -> None:
    nm.register()
    pixels = smooth_image(6, 7, 3)
    path = tmp_path / "p.nmem"
    Image.fromarray(pixels).save(
        path, lossless=True, quality=80, icc_profile=ICC, exif=exif_rotated()
    )
    with Image.open(path) as im:
        assert np.array_equal(np.asarray(im), pixels)
        assert im.info["icc_profile"] == ICC and im.getexif()[0x0112] == 6
        buffer = io.BytesIO()
        im.save(buffer, format="NMEM", lossless=True)  # its own metadata goes along
    assert nm.read_metadata(buffer.getvalue()).icc == ICC
    Image.fromarray(pixels).save(path, near_lossless=0)  # K = 0: lossless, never lossy
    assert nm.read_info(path).mode == "lossless"
    lossy = tmp_path / "l.nmem"
    rotated = Image.Exif()
    rotated[0x0112] = 6
    Image.fromarray(pixels).save(lossy, quality=50, steps=2, icc_profile=ICC, exif=rotated)
    with Image.open(lossy) as im:
        assert im.info["nmem_mode"] == "lossy" and im.info["icc_profile"] == ICC
        assert im.getexif()[0x0112] == 6 and im.size == (7, 6)
    Image.fromarray(pixels).save(lossy, lossless=True, strip=True, icc_profile=ICC)
    assert nm.read_metadata(lossy) == nm.Metadata()


def test_decode_takes_a_path_and_refuses_other_types(tmp_path: Path) -> None:
    pixels = smooth_image(4, 5, 1)
    path = tmp_path / "a.nmem"
    path.write_bytes(nm.encode(pixels, mode="lossless"))
    assert np.array_equal(nm.decode(path), pixels) and np.array_equal(nm.decode(str(path)), pixels)
    with pytest.raises(nm.OptionError, match="bytes or the path"):
        nm.decode(12)
    with pytest.raises(nm.FormatError, match="no such file"):
        nm.decode(str(tmp_path / "missing.nmem"))


# -- errors --------------------------------------------------------------------------------


def test_unwritable_output_folder_is_refused_before_encoding(
    png_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    import neural_memory.api
    import neural_memory.atomic

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    def never(*args, **kwargs):
        raise AssertionError("encoded although the output cannot be written")

    monkeypatch.setattr(neural_memory.atomic.tempfile, "TemporaryFile", refuse)
    monkeypatch.setattr(neural_memory.api, "encode", never)
    single = ["encode", str(png_path), "--lossless", "-o", str(tmp_path / "ro.nmem")]
    batch = ["encode", str(tmp_path / "*.png"), "--lossless", "-o", str(tmp_path / "ro"), "-j", "1"]
    for args in (single, batch):
        code, _, stderr = in_process(capsys, *args)
        one_line_error(code, stderr, "cannot write in the output folder")


def test_a_lossy_encode_that_cannot_fit_in_memory_is_refused_before_training(
    png_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    pytest.importorskip("torch")
    from neural_memory import memory_budget
    from neural_memory.lossy.encoding import encoder

    def never(*args, **kwargs):
        raise AssertionError("trained although the encode cannot fit")

    monkeypatch.setattr(memory_budget, "available_bytes", lambda: 50_000_000)
    monkeypatch.setattr(memory_budget, "_resident_bytes", lambda: 0)
    monkeypatch.setattr(encoder, "fit", never)
    out = tmp_path / "x.nmem"
    code, _, stderr = in_process(capsys, "encode", str(png_path), "-o", str(out))
    one_line_error(code, stderr, "needs about 1.0 GB of memory and 0.1 GB is available")
    assert "--lossless" in stderr and not out.exists()
    # lossless does not train, so it is not refused
    code, _, stderr = in_process(capsys, "encode", str(png_path), "--lossless", "-o", str(out))
    assert code == 0 and out.exists(), stderr


def test_inpainting_that_cannot_fit_in_memory_is_refused_before_training(monkeypatch) -> None:
    pytest.importorskip("torch")
    from neural_memory import memory_budget
    from neural_memory.errors import ImageError
    from neural_memory.reconstruct.inpainting import inpaint

    monkeypatch.setattr(memory_budget, "available_bytes", lambda: 50_000_000)
    monkeypatch.setattr(memory_budget, "_resident_bytes", lambda: 0)
    image = smooth_image(40, 48, 3)
    mask = np.zeros((40, 48), np.uint8)
    mask[10:20, 10:20] = 1
    with pytest.raises(ImageError, match=r"inpainting of this 48x40 image .* crop it"):
        inpaint(image, mask, steps=1)


def test_the_memory_estimate_grows_with_the_image_and_fits_where_memory_is_free(
    monkeypatch,
) -> None:
    from neural_memory import memory_budget
    from neural_memory.memory_budget import LOSSY_ENCODE, memory_shortfall

    small, large = (LOSSY_ENCODE.bytes_for(n) for n in (10**6, 10**8))
    assert 1.2e9 < small < 1.4e9 and 34e9 < large < 36e9
    monkeypatch.setattr(memory_budget, "_resident_bytes", lambda: 0)
    monkeypatch.setattr(memory_budget, "available_bytes", lambda: 2 * 10**9)
    assert memory_shortfall(LOSSY_ENCODE, 1000, 1000, "a lossy encode", "") is None
    message = memory_shortfall(LOSSY_ENCODE, 10**4, 10**4, "a lossy encode", "")
    assert message.startswith("a lossy encode of this 10000x10000 image (100.0 Mpixel)")
    monkeypatch.setattr(memory_budget, "available_bytes", lambda: None)  # unknown: no check
    assert memory_shortfall(LOSSY_ENCODE, 10**4, 10**4, "a lossy encode", "") is None


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into mode-555 folders")
def test_mode_555_output_folder(png_path: Path, tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o555)
    result = run("encode", str(png_path), "--lossless", "-o", str(folder / "x.nmem"))
    assert result.returncode == 1 and b"cannot write in the output folder" in result.stderr


def test_scale_inf_and_nan_are_one_line_errors(
    png_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nmem = tmp_path / "s.nmem"
    nmem.write_bytes(nm.encode(nm.load_image(png_path), mode="lossless"))
    for value in ("inf", "nan", "1e999"):
        code, _, stderr = in_process(
            capsys, "decode", str(nmem), "--scale", value, "-o", str(tmp_path / "o.png")
        )
        one_line_error(code, stderr, "--scale")


def test_lossy_option_errors_come_before_torch(png_path: Path, tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from neural_memory.cli import main\n"
        f"args = ['encode', {str(png_path)!r}, '--lambda', '20', '-o', {str(tmp_path / 'x')!r}]\n"
        "sys.exit(main(args))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1, result.stderr
    assert (
        result.stderr.strip()
        == "neural-memory: error: --lambda / lmbda= must be in (0, 10), got 20"
    )


def test_broken_pipe_is_quiet(tmp_path: Path) -> None:
    nmem = tmp_path / "a.nmem"
    nmem.write_bytes(nm.encode(smooth_image(4, 4, 1), mode="lossless"))
    files = " ".join([str(nmem)] * 400)
    shell = f"{sys.executable} -m neural_memory info {files} | head -1"
    result = subprocess.run(shell, shell=True, capture_output=True, text=True, timeout=120)
    assert result.stdout.count("\n") == 1 and result.stderr == "", result.stderr


def _interrupt_batch(tmp_path: Path, jobs: str) -> tuple[subprocess.CompletedProcess, Path]:
    """Start a lossless batch of 12 images, Ctrl-C it (SIGINT to its process group, as a
    terminal does) when the first output appears."""
    source = tmp_path / f"in{jobs}"
    source.mkdir()
    for i in range(12):
        Image.fromarray(smooth_image(160, 160, 3, seed=i)).save(source / f"{i:02d}.png")
    out = tmp_path / f"out{jobs}"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "neural_memory",
            "encode",
            str(source),
            "--lossless",
            "-o",
            str(out),
            "-j",
            jobs,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    done = lambda: [p for p in out.glob("*.nmem") if not p.name.startswith(".")]  # noqa: E731
    while not done() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr), out


def test_ctrl_c_swallowed_by_an_extension_still_exits_130(
    png_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    """Ctrl-C inside an extension that turns the KeyboardInterrupt into another error (seen:
    a SystemError from a -j 1 lossy batch) is still an interruption: 130, one line."""
    import neural_memory.api

    def swallowing(*args, **kwargs):
        try:
            signal.raise_signal(signal.SIGINT)
        except KeyboardInterrupt:
            raise SystemError("error return without exception set") from None

    monkeypatch.setattr(neural_memory.api, "encode", swallowing)
    out = str(tmp_path / "i.nmem")
    code, _, stderr = in_process(capsys, "encode", str(png_path), "--lossless", "-o", out)
    assert code == 130 and stderr == "neural-memory: interrupted\n", stderr
    assert not Path(out).exists()


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_exits_130_and_writes_nothing_more(tmp_path: Path, jobs: str) -> None:
    result, out = _interrupt_batch(tmp_path, jobs)
    assert result.returncode == 130, result.stderr
    assert result.stderr.strip() == "neural-memory: interrupted", result.stderr
    written = sorted(p.name for p in out.iterdir())
    time.sleep(1.0)
    assert sorted(p.name for p in out.iterdir()) == written  # the pool stopped writing
    assert all(name.endswith(".nmem") and not name.startswith(".") for name in written)
    assert 1 <= len(written) < 12


# -- reports and progress ------------------------------------------------------------------


def test_first_run_compile_is_announced(
    png_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    import neural_memory.progress as progress

    assert progress.kernels_cached("lossy") in (True, False)
    monkeypatch.setattr(progress, "kernels_cached", lambda engine: False)
    monkeypatch.setattr(progress, "COMPILE_NOTICE_DELAY", 0.0)
    # lossless coding and every decode run in the C library: nothing to compile, no notice
    out = tmp_path / "c.nmem"
    code, _, stderr = in_process(capsys, "encode", str(png_path), "--lossless", "-o", str(out))
    assert code == 0 and "compiling" not in stderr, stderr
    code, _, stderr = in_process(capsys, "decode", str(out), "-o", str(tmp_path / "c.png"))
    assert code == 0 and "compiling" not in stderr, stderr
    code, _, stderr = in_process(
        capsys, "encode", str(png_path), "--steps", "1", "-o", str(tmp_path / "l.nmem")
    )
    assert code == 0 and "first run: compiling kernels, about 25 s" in stderr, stderr


def test_compile_notice_waits_so_a_quick_error_stays_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    import neural_memory.progress as progress

    monkeypatch.setattr(progress, "kernels_cached", lambda engine: False)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    code, _, stderr = in_process(capsys, "encode", str(junk), "-o", str(tmp_path / "j.nmem"))
    assert code == 1 and len(stderr.strip().splitlines()) == 1, stderr


def test_progress_bpp_is_the_written_files() -> None:
    image = smooth_image(64, 64, 3)
    seen: list[float] = []
    data = nm.encode(image, steps=6, progress=lambda done, total, info: seen.append(info["bpp"]))
    file_bpp = len(data) * 8 / (64 * 64)
    assert abs(seen[-1] - file_bpp) < 0.2 * file_bpp, (seen[-1], file_bpp)


def test_no_compile_notice_when_the_c_training_kernels_run(monkeypatch) -> None:
    """The notice names the numba training kernels; with the C ones chosen they never run
    (nor compile), so an empty cache for them must not announce a 25 s compile."""
    import neural_memory.progress as progress
    from neural_memory.lossy.encoding import train_kernels

    monkeypatch.setattr(train_kernels, "BACKEND", "c")
    assert progress.kernels_cached("lossy") is True
    assert progress.compile_notice("lossy") is None
