"""The original experiment, done well: a small photo stored in a neural network.

A 96x96 grayscale face (a crop of Kodak kodim04, bundled as ``samples/face96.png``) is encoded
with the project's lossy codec, whose file is nothing but the quantized parameters of a small
network (latent grids, synthesis MLP, entropy model). The picture is then rebuilt from those
bytes alone and put beside the original, with the sizes a reader wants to compare: the
network, the same pixels as PNG (lossless) and as BMP (raw).
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import numpy as np

SAMPLE = "face96.png"
LMBDA = 3e-4  # rate-distortion trade-off: about 36.7 dB in about 1.1 KB on this crop
ZOOM = 3  # nearest-neighbour zoom of the montage, so 96x96 pixels are visible


def _file_bytes(pixels: np.ndarray, fmt: str) -> int:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels[:, :, 0]).save(
        buffer, format=fmt, **({"optimize": True} if fmt == "PNG" else {})
    )
    return len(buffer.getvalue())


def _montage(original: np.ndarray, rebuilt: np.ndarray) -> np.ndarray:
    """original | rebuilt | |error| x 8, zoomed, with white gutters (grayscale)."""
    error = np.abs(original.astype(np.int16) - rebuilt.astype(np.int16)) * 8
    panels = [original[:, :, 0], rebuilt[:, :, 0], np.clip(255 - error[:, :, 0], 0, 255)]
    panels = [np.kron(p.astype(np.uint8), np.ones((ZOOM, ZOOM), np.uint8)) for p in panels]
    gutter = np.full((panels[0].shape[0], 6), 255, np.uint8)
    row = [panels[0], gutter, panels[1], gutter, panels[2]]
    return np.concatenate(row, axis=1)[:, :, None]


def run_memory_demo(
    outdir: Path, *, lmbda: float = LMBDA, steps: int | None = None, verbose: bool = True
) -> dict:
    """Encode the bundled face, rebuild it from the network alone, write the results.

    Files written to ``outdir``: ``face96.nmem`` (the network), ``face96-rebuilt.png``,
    ``face96-montage.png`` (original | rebuilt | error x8, 3x zoom) and ``face96-summary.txt``.
    Returns the summary as a dict. Deterministic: fixed seed and one torch thread. ``steps``
    overrides the fast preset's training length (a quick look).
    """
    from neural_memory.api import decode, encode, read_info
    from neural_memory.atomic import write_atomic
    from neural_memory.images import load_image, save_image
    from neural_memory.metrics import bits_per_pixel, psnr
    from neural_memory.samples import sample_path

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    source = sample_path(SAMPLE)
    pixels = load_image(source)
    height, width, _ = pixels.shape

    start = time.perf_counter()
    data = encode(pixels, lmbda=lmbda, preset="fast", steps=steps, seed=0, threads=1)
    encode_s = time.perf_counter() - start
    start = time.perf_counter()
    rebuilt = decode(data)  # the network alone: no pixel of the original goes in
    decode_s = time.perf_counter() - start

    info = read_info(data)
    summary = {
        "image": f"{SAMPLE} ({width}x{height} grayscale, crop of Kodak kodim04)",
        "pixels": width * height,
        "network_bytes": len(data),
        "network_payload_bytes": info.sections.get("LOSY", len(data)),
        "png_bytes": _file_bytes(pixels, "PNG"),
        "bmp_bytes": _file_bytes(pixels, "BMP"),
        "bpp": bits_per_pixel(len(data), width, height),
        "psnr_db": round(psnr(pixels, rebuilt), 3),
        "max_abs_error": int(np.abs(pixels.astype(int) - rebuilt.astype(int)).max()),
        "lmbda": lmbda,
        "encode_seconds": round(encode_s, 2),
        "decode_seconds": round(decode_s, 3),
    }
    write_atomic(outdir / "face96.nmem", data)
    save_image(outdir / "face96-rebuilt.png", rebuilt)
    save_image(outdir / "face96-montage.png", _montage(pixels, rebuilt))
    lines = [
        "neural memory: a photo stored as a network and rebuilt from it alone",
        f"image            {summary['image']}",
        f"network (.nmem)  {summary['network_bytes']:6d} bytes  ({summary['bpp']:.3f} bpp)",
        f"PNG (lossless)   {summary['png_bytes']:6d} bytes",
        f"BMP (raw)        {summary['bmp_bytes']:6d} bytes",
        f"PSNR rebuilt     {summary['psnr_db']:.2f} dB (max error {summary['max_abs_error']})",
        f"encode {summary['encode_seconds']:.1f} s, decode {summary['decode_seconds']:.2f} s",
        "montage: original | rebuilt from the network | |error| x 8 (white = exact)",
    ]
    write_atomic(outdir / "face96-summary.txt", ("\n".join(lines) + "\n").encode())
    write_atomic(outdir / "face96-summary.json", json.dumps(summary, indent=1).encode())
    if verbose:
        print("\n".join(lines))
    return summary
