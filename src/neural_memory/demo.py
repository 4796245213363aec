"""``neural-memory demo``: the main job end to end on a bundled photo.

It encodes the sample lossy and lossless, decodes both, checks them, and puts the result
beside what JPEG and WebP achieve at the same file size, so a first-time user sees in
one command what the codec does and how it compares.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np

from neural_memory.api import decode, encode, read_info
from neural_memory.atomic import write_atomic
from neural_memory.images import load_image, save_image
from neural_memory.metrics import bits_per_pixel, psnr
from neural_memory.options import EncodeOptions
from neural_memory.progress import progress_bar
from neural_memory.samples import sample_path


def _pil_bytes(pixels: np.ndarray, fmt: str, quality: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt, quality=quality)
    return buffer.getvalue()


def _at_size(pixels: np.ndarray, fmt: str, budget: int) -> tuple[bytes, float]:
    """The largest file of ``fmt`` not exceeding ``budget`` bytes (quality by bisection)."""
    from PIL import Image

    low, high, best = 1, 100, _pil_bytes(pixels, fmt, 1)
    while low <= high:
        quality = (low + high) // 2
        data = _pil_bytes(pixels, fmt, quality)
        if len(data) <= budget:
            best, low = data, quality + 1
        else:
            high = quality - 1
    decoded = np.asarray(Image.open(io.BytesIO(best)).convert("RGB"))
    return best, psnr(pixels, decoded)


def run_demo(
    outdir: Path, *, preset: str = "fast", device: str = "cpu", steps: int | None = None
) -> int:
    """Run the demo, write its files into ``outdir`` and print a summary table. ``steps``
    overrides the training length of both lossy encodes (a quick look, e.g. in tests)."""
    options = EncodeOptions(preset=preset, device=device, steps=steps)
    source = sample_path()
    pixels = load_image(source)
    height, width, _ = pixels.shape
    outdir.mkdir(parents=True, exist_ok=True)
    print(f"sample: {source.name}, {width}x{height} RGB, PNG file {source.stat().st_size:,} bytes")

    rows = []
    start = time.perf_counter()
    effort = preset if steps is None else f"{steps} steps"
    with progress_bar(f"lossy encode ({effort})") as progress:
        lossy = encode(pixels, options, progress=progress)
    encode_s = time.perf_counter() - start
    start = time.perf_counter()
    rebuilt = decode(lossy)
    decode_s = time.perf_counter() - start
    write_atomic(outdir / "parrots.nmem", lossy)
    save_image(outdir / "parrots-decoded.png", rebuilt)
    rows.append(("neural-memory lossy", len(lossy), psnr(pixels, rebuilt), encode_s, decode_s))

    start = time.perf_counter()
    exact = encode(pixels, mode="lossless")
    encode_s = time.perf_counter() - start
    start = time.perf_counter()
    back = decode(exact)
    decode_s = time.perf_counter() - start
    if not np.array_equal(back, pixels):
        raise AssertionError("lossless round trip is not exact")  # never expected
    write_atomic(outdir / "parrots-lossless.nmem", exact)
    rows.append(("neural-memory lossless", len(exact), float("inf"), encode_s, decode_s))

    for fmt in ("JPEG", "WEBP"):
        data, quality = _at_size(pixels, fmt, len(lossy))
        rows.append((f"{fmt} at the same size", len(data), quality, None, None))

    info = read_info(lossy)
    print(f"lossy file sections: {', '.join(f'{k} {v} B' for k, v in info.sections.items())}")
    print(f"{'codec':28} {'bytes':>8} {'bpp':>7} {'PSNR dB':>8} {'encode s':>9} {'decode s':>9}")
    for name, size, quality, enc, dec in rows:
        bpp = bits_per_pixel(size, width, height)
        q = "exact" if quality == float("inf") else f"{quality:.2f}"
        e = "" if enc is None else f"{enc:.1f}"
        d = "" if dec is None else f"{dec:.2f}"
        print(f"{name:28} {size:>8,} {bpp:>7.3f} {q:>8} {e:>9} {d:>9}")
    print()
    from neural_memory.reconstruct import run_memory_demo

    run_memory_demo(outdir / "memory", steps=steps)
    print(f"outputs in {outdir}/")
    return 0
