"""Matplotlib figures: RD curves (PSNR and MS-SSIM vs bpp) and a crop comparison.

Always uses the non-interactive Agg backend: the benchmark runs on servers and in CI.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from . import codecs as codec_registry
from .codecs import LOSSY
from .dataset import load_rgb
from .quality import ms_ssim_db
from .results import CROPS_DIR, BenchResults
from .summary import Summary, curve

_MARKERS = "osD^v<>phX*"


def _style(names: list[str]) -> dict[str, dict[str, Any]]:
    """One colour per codec family, a different marker/line per variant of the family."""
    cmap = plt.get_cmap("tab10")
    families: dict[str, int] = {}
    seen: dict[str, int] = {}
    style = {}
    for n in names:
        fam = codec_registry.get_codec(n).family
        families.setdefault(fam, len(families))
        k = seen.get(fam, 0)
        seen[fam] = k + 1
        style[n] = {
            "color": cmap(families[fam] % 10),
            "marker": _MARKERS[k % len(_MARKERS)],
            "linestyle": ["-", "--", ":", "-."][k % 4],
        }
        if codec_registry.get_codec(n).ours:
            style[n].update(color="black", linewidth=2.2)
    return style


#: Published curves drawn on the main PSNR plot (all of them go on rd_psnr_published.png).
KEY_PUBLISHED = ("vtm", "av1", "coolchic5", "c3")


def plot_rd(results: BenchResults, summ: Summary, out_dir: Path) -> dict[str, Path]:
    """rd_psnr.png, rd_msssim.png and, with published anchors, rd_psnr_published.png, keyed
    by their stems (``rd_psnr`` ...), the keys the HTML page looks up."""
    aggs = summ["aggregates"]
    lossy = [n for n, a in aggs.items() if a["mode"] == LOSSY and len(curve(a)[0]) >= 2]
    style = _style(lossy)
    published = summ["published"]
    figures = [
        ("psnr", "rd_psnr.png", "RGB PSNR (dB)", [k for k in KEY_PUBLISHED if k in published]),
        ("ms_ssim", "rd_msssim.png", "MS-SSIM (dB) = -10 log10(1 - MS-SSIM)", []),
    ]
    if published:
        figures.append(("psnr", "rd_psnr_published.png", "RGB PSNR (dB)", list(published)))
    paths = {}
    max_bpp = 2.0
    title = results.config.title or Path(results.config.images_dir).name
    for metric, fname, ylabel, pubs in figures:
        fig, ax = plt.subplots(figsize=(10, 7), dpi=110)
        ys: list[float] = []
        for n in lossy:
            r, q = curve(aggs[n], metric)
            if metric == "ms_ssim":
                q = [ms_ssim_db(v) for v in q]
            st = dict(style[n])
            if fname == "rd_psnr_published.png":
                st.update(linewidth=1.0, alpha=0.6)
            ax.plot(r, q, label=aggs[n]["label"], markersize=4, **st)
            ys += [y for x, y in zip(r, q, strict=True) if x <= max_bpp]
        cmap = plt.get_cmap("tab20")
        for k, name in enumerate(pubs):
            pc = published[name]
            ax.plot(
                pc["bpp"],
                pc["psnr"],
                linestyle=(0, (1, 1.5)),
                linewidth=1.6,
                marker="x",
                markersize=4,
                color=cmap(k % 20) if len(pubs) > 4 else str(0.15 + 0.15 * k),
                label=f"published: {name}",
            )
            ys += [y for x, y in zip(pc["bpp"], pc["psnr"], strict=True) if x <= max_bpp]
        ax.set_xlim(0, max_bpp)
        if ys:
            ax.set_ylim(min(ys) - 0.5, max(ys) + 0.5)
        ax.set_xlabel("bits per pixel (bpp)")
        ax.set_ylabel(ylabel)
        extra = " vs published Kodak curves" if fname == "rd_psnr_published.png" else ""
        ax.set_title(f"{title}: {len(results.images)} images, dataset averages{extra}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, ncol=2, loc="lower right")
        fig.tight_layout()
        path = out_dir / fname
        fig.savefig(path)
        plt.close(fig)
        paths[Path(fname).stem] = path  # keys: rd_psnr, rd_msssim, rd_psnr_published
    return paths


def _busiest_window(img: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left corner of the crop with the most gradient energy: artefacts show there."""
    g = img.astype(np.float64).mean(axis=2)
    energy = np.abs(np.diff(g, axis=0))[:, :-1] + np.abs(np.diff(g, axis=1))[:-1, :]
    h, w = energy.shape
    best, pos = -1.0, (0, 0)
    step = max(size // 4, 1)
    for y in range(0, max(h - size, 0) + 1, step):
        for x in range(0, max(w - size, 0) + 1, step):
            e = float(energy[y : y + size, x : x + size].sum())
            if e > best:
                best, pos = e, (y, x)
    return pos


@dataclass(frozen=True)
class CropSet:
    """The same window of one image, original and as decoded by each lossy codec."""

    image: str
    x: int
    y: int
    size: int
    original: np.ndarray
    decoded: list[tuple[str, float, float, np.ndarray]]  # (codec label, bpp, psnr, pixels)


def _crop_cache_path(out_dir: Path, codec: str, image: str, setting: Any, window: tuple) -> Path:
    """Where the decoded crop of one (codec, image, setting, window) is kept between reports."""
    y, x, size = window
    return out_dir / CROPS_DIR / f"{codec}-{Path(image).stem}-{setting}-{y}-{x}-{size}.png"


def comparison_crops(results: BenchResults, summ: Summary) -> CropSet | None:
    """Crops for the visual comparisons (crops.png and the HTML slider), computed once.

    Decoded images are not kept by the workers, so for each lossy codec the setting whose
    rate on this image is closest to ``crop_bpp`` is encoded again here (one encode each).
    The decoded crop is kept under OUT/crops/ (a PNG, lossless) and reused, like the records
    of results.jsonl, so that ``--report-only`` measures nothing the second time: on the
    full-size CLIC 2025 photographs the re-encode of `nm` alone takes 10-30 minutes. A run
    without ``--resume`` clears the folder with the records (runner.run_benchmark).
    """
    from PIL import Image

    from neural_memory.atomic import write_atomic

    cfg = results.config
    aggs = summ["aggregates"]
    lossy = [n for n, a in aggs.items() if a["mode"] == LOSSY]
    if not lossy or not results.images:
        return None
    image = cfg.crop_image or results.images[0]
    path = Path(cfg.images_dir) / image
    if not path.exists():
        return None
    src = load_rgb(path)
    size = min(cfg.crop_size, src.shape[0], src.shape[1])
    y, x = _busiest_window(src, size)
    decoded = []
    for n in lossy:
        recs = [
            r
            for r in results.records
            if r.get("status") == "ok" and r["codec"] == n and r["image"] == image
        ]
        if not recs:
            continue
        best = min(recs, key=lambda r: abs(r["bpp"] - cfg.crop_bpp))
        cached = _crop_cache_path(Path(cfg.out_dir), n, image, best["setting"], (y, x, size))
        if cached.exists():
            with Image.open(cached) as im:
                pixels = np.asarray(im.convert("RGB"))
        else:
            spec = codec_registry.get_codec(n).with_options(cfg.our_options())
            try:
                dec = np.asarray(spec.decode(spec.encode(src, best["setting"])))
            except Exception:  # a codec failing here is already reported in the tables
                continue
            pixels = np.ascontiguousarray(dec[y : y + size, x : x + size])
            cached.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(cached, lambda tmp, px=pixels: Image.fromarray(px).save(tmp))
        decoded.append((aggs[n]["label"], best["bpp"], best["psnr"], pixels))
    return CropSet(image, x, y, size, src[y : y + size, x : x + size], decoded)


def plot_crops(crops: CropSet | None, results: BenchResults, out_dir: Path) -> Path | None:
    """crops.png: the same crop decoded by each lossy codec at about ``crop_bpp``."""
    if crops is None:
        return None
    cfg = results.config
    image, x, y, size = crops.image, crops.x, crops.y, crops.size
    panels = [("original", crops.original)]
    for label, bpp, quality, pixels in crops.decoded:
        panels.append((f"{label}\n{bpp:.3f} bpp, {quality:.2f} dB", pixels))
    ncols = min(4, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 3.5 * nrows), dpi=90)
    axes = np.atleast_1d(axes).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, (text, crop) in zip(axes, panels, strict=False):
        ax.imshow(crop, interpolation="nearest")
        ax.set_title(text, fontsize=8)
    fig.suptitle(
        f"{image}, crop {size}x{size} at ({x}, {y}), target {cfg.crop_bpp} bpp", fontsize=9
    )
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    out = out_dir / "crops.png"
    fig.savefig(out)
    plt.close(fig)
    return out
