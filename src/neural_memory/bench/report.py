"""Writes a run out: results.json, report.md, and (through plots / html) the figures and the
HTML page. The numbers come from :mod:`.summary`."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .anchors import kodak_published_about
from .codecs import LOSSLESS, LOSSY, NEAR_LOSSLESS
from .results import BenchResults
from .summary import Summary, curve, summary

CONVENTIONS = """\
* **Rate.** bpp = 8 x bytes / (H x W) on the real encoded file (headers and containers
  included); lossless rates are in bpsp = 8 x bytes / (H x W x C), C = 3.
* **PSNR.** RGB PSNR, peak 255, with the squared error pooled over the three channels
  (one MSE per image, not a mean of per-channel PSNRs).
* **MS-SSIM.** 5-scale Wang et al. (2003): Gaussian window 11x11, sigma 1.5, K1 = 0.01,
  K2 = 0.03, weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), 2x2 average down-sampling,
  computed on each of R, G, B and averaged over channels (pytorch-msssim / CompressAI
  convention). Plotted as -10 log10(1 - MS-SSIM) dB. Images under 161 px on the short side
  use fewer scales with renormalised weights (recorded per item as `ms_ssim_scales`).
* **Dataset averages.** For every rate setting, the mean over images of the per-image bpp
  and the mean of the per-image PSNR (and MS-SSIM). Only settings measured on every image
  enter the curves.
* **PSNR at a fixed bpp.** PCHIP interpolation of PSNR against log(bpp) along a codec's
  average curve; "n/a" outside the measured rate range (never extrapolated).
* **BD-rate.** PCHIP interpolation (scipy.interpolate.PchipInterpolator) of log(rate) as a
  function of PSNR on both average curves, integrated over the PSNR range the two curves
  share; n/a when the ranges do not overlap. Negative = the row codec needs fewer bits than
  the column codec at equal PSNR.
* **Checks.** Every lossless decode is compared bit-exactly with the source; every
  near-lossless decode must have max |error| <= k.
* **Time and memory.** Wall-clock seconds of one encode and one decode call on one thread
  (codecs are forced single-threaded), medians over items. Peak memory: each item runs in a
  fresh forked worker; we report the growth of its peak resident set size
  (getrusage ru_maxrss) over its RSS at the start of the item, which includes allocations of
  the C libraries (unlike tracemalloc). Tables give medians in MiB.
"""


# --------------------------------------------------------------------------- output


def _fmt(v: float | None, nd: int = 2, signed: bool = False) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:+.{nd}f}" if signed else f"{v:.{nd}f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _setting_str(v: Any) -> str:
    return "-" if v is None else f"{v:g}" if isinstance(v, float) else str(v)


def _per_image_section(
    per_image: dict[str, dict[str, dict[str, float | None]]], h: str
) -> list[str]:
    """One table per codec of ours: its BD-rate against each other lossy codec, image by
    image, with the mean and the median of the images' values under them."""
    out: list[str] = []
    for test, by_other in per_image.items():
        others = list(by_other)
        if not others:
            continue
        images = sorted({i for row in by_other.values() for i in row})
        out += ["", f"{h}# Per image: BD-rate (%, PSNR) of `{test}` against each codec", ""]
        rows = [
            [Path(i).stem] + [_fmt(by_other[o].get(i), 1, True) for o in others] for i in images
        ]
        for name, stat in (("mean", statistics.mean), ("median", statistics.median)):
            cells = []
            for o in others:
                vals = [v for v in by_other[o].values() if v is not None]
                cells.append(_fmt(stat(vals), 1, True) if vals else "n/a")
            rows.append([f"*{name}*", *cells])
        out.append(_table(["image", *(f"`{o}`" for o in others)], rows))
        out += [
            "",
            "Each image's own curves (its points only); the dataset rows above use the mean "
            "curves, so their figure differs from the mean of these.",
        ]
    return out


def render_markdown(
    results: BenchResults, summ: Summary, image_prefix: str = "", heading_level: int = 1
) -> str:
    """The human report. ``image_prefix`` is prepended to plot file names (for docs/)."""
    h = "#" * heading_level
    cfg = results.config
    env = results.environment
    aggs = summ["aggregates"]
    title = cfg.title or f"Benchmark on {Path(cfg.images_dir).name}"
    shapes = sorted({(r["width"], r["height"]) for r in results.ok()})
    out = [f"{h} {title}", ""]
    out += [
        f"* Images: {len(results.images)} from `{cfg.images_dir}` "
        f"({', '.join(f'{w}x{hh}' for w, hh in shapes)})",
        f"* Date: {env.get('date', '?')}; machine: {env.get('cpu', '?')}, "
        f"{env.get('cpu_count', '?')} cores, {env.get('memory_gb', '?')} GiB; "
        f"Python {env.get('python', '?')}, {env.get('platform', '?')}",
        f"* Command: `{env.get('command', '?')}` (wall time {results.wall_seconds / 60:.1f} min "
        f"for this invocation, jobs={cfg.jobs})",
    ]
    if results.skipped:
        out += ["", f"{h}# Skipped codecs", ""]
        out += [f"* `{k}`: {v}" for k, v in sorted(results.skipped.items())]
    errs = [r for r in results.records if r.get("status") == "error"]
    if errs:
        out += ["", f"**{len(errs)} item(s) failed**, e.g. `{errs[0]['key']}`: {errs[0]['error']}"]

    lossy = [n for n, a in aggs.items() if a["mode"] == LOSSY]
    if lossy:
        bpts = [str(b) for b in cfg.bpp_points]
        out += ["", f"{h}# Lossy: PSNR (dB) at fixed rates", ""]
        rows = []
        for n in lossy:
            a = aggs[n]
            r, _ = curve(a)
            span = f"{min(r):.2f}-{max(r):.2f}" if r else "n/a"
            rows.append(
                [f"`{n}`", a["label"], span]
                + [_fmt(summ["psnr_at_bpp"].get(n, {}).get(b)) for b in bpts]
            )
        for n in summ["published"]:
            pc = summ["published"][n]
            rows.append(
                [f"published:{n}", "(published)", f"{min(pc['bpp']):.2f}-{max(pc['bpp']):.2f}"]
                + [_fmt(summ["psnr_at_bpp"].get(f"published:{n}", {}).get(b)) for b in bpts]
            )
        out.append(_table(["codec", "label", "bpp range"] + [f"{b} bpp" for b in bpts], rows))
        out += ["", f"{h}# Lossy: MS-SSIM (dB) at fixed rates", ""]
        rows = [
            [f"`{n}`"] + [_fmt(summ["ms_ssim_db_at_bpp"].get(n, {}).get(b)) for b in bpts]
            for n in lossy
        ]
        out.append(_table(["codec"] + [f"{b} bpp" for b in bpts], rows))

        bd = summ["bd_rate_psnr"]
        measured = [n for n in lossy if n in bd]
        if measured:
            out += [
                "",
                f"{h}# BD-rate (%, PSNR) of each row codec against each column codec",
                "",
            ]
            rows = [[f"`{t}`"] + [_fmt(bd[t].get(a), 1, True) for a in measured] for t in measured]
            out.append(_table(["row vs column"] + [f"`{a}`" for a in measured], rows))
            if summ["published"]:
                pubs = list(summ["published"])
                out += ["", f"{h}# BD-rate (%, PSNR) against published Kodak curves", ""]
                rows = [
                    [f"`{t}`"] + [_fmt(bd[t].get(f"published:{p}"), 1, True) for p in pubs]
                    for t in measured
                ]
                out.append(_table(["measured vs published", *pubs], rows))
                out += ["", f"Published curves: {kodak_published_about()}", ""]
                out += [f"* {p}: {summ['published'][p]['source']}" for p in pubs]
        out += _per_image_section(summ.get("bd_rate_psnr_per_image", {}), h)
        if cfg.plots:
            out += [
                "",
                f"{h}# Rate-distortion curves",
                "",
                f"![PSNR vs bpp]({image_prefix}rd_psnr.png)",
                "",
                f"![MS-SSIM vs bpp]({image_prefix}rd_msssim.png)",
                "",
            ]
            if summ["published"]:
                out += [
                    f"![PSNR vs bpp, published curves]({image_prefix}rd_psnr_published.png)",
                    "",
                ]
            out += [
                f"Crops at about {cfg.crop_bpp} bpp (the setting closest to it on that image):",
                "",
                f"![crops]({image_prefix}crops.png)",
            ]

    lossless = [n for n, a in aggs.items() if a["mode"] == LOSSLESS]
    if lossless:
        out += ["", f"{h}# Lossless", ""]
        rows = []
        for n in sorted(lossless, key=lambda n: aggs[n]["points"][0]["bpsp"] or 9e9):
            a = aggs[n]
            p = a["points"][0]
            rows.append(
                [
                    f"`{n}`",
                    a["label"],
                    _fmt(p["bpsp"], 3) + ("" if p["complete"] else " (partial)"),
                    f"{'yes' if p['all_exact'] else 'NO'} ({p['n']}/{len(results.images)})",
                    _fmt(a["encode_s_median"], 3),
                    _fmt(a["decode_s_median"], 3),
                    _fmt(a["peak_rss_delta_mb_median"], 1),
                    a["options"],
                ]
            )
        out.append(
            _table(
                ["codec", "label", "bpsp", "bit-exact", "enc s", "dec s", "peak MiB", "options"],
                rows,
            )
        )

    near = [n for n, a in aggs.items() if a["mode"] == NEAR_LOSSLESS]
    if near:
        out += ["", f"{h}# Near-lossless", ""]
        rows = []
        for n in near:
            for p in sorted(aggs[n]["points"], key=lambda p: p["setting"]):
                rows.append(
                    [
                        f"`{n}`",
                        str(p["setting"]),
                        _fmt(p["bpsp"], 3),
                        _fmt(p["bpp"], 3),
                        _fmt(p["psnr"]),
                        str(p["max_error"]),
                        "yes" if p["all_within_bound"] else "NO",
                        _fmt(p["encode_s_median"], 3),
                        _fmt(p["decode_s_median"], 3),
                    ]
                )
        out.append(
            _table(["codec", "k", "bpsp", "bpp", "PSNR", "max err", "<= k", "enc s", "dec s"], rows)
        )

    if aggs:
        out += ["", f"{h}# Time and memory (medians over all items of a codec)", ""]
        rows = [
            [
                f"`{n}`",
                _fmt(a["encode_s_median"], 3),
                _fmt(a["decode_s_median"], 3),
                _fmt(a["encode_s_total"] / 60, 1),
                _fmt(a["peak_rss_delta_mb_median"], 1),
                _fmt(a["peak_rss_delta_mb_max"], 1),
            ]
            for n, a in aggs.items()
        ]
        out.append(
            _table(
                ["codec", "encode s", "decode s", "total encode min", "peak MiB", "max peak MiB"],
                rows,
            )
        )

        out += ["", f"{h}# Codecs and library versions", ""]
        rows = [
            [f"`{n}`", a["library"], a["options"], summ["versions"].get(n, "?")]
            for n, a in aggs.items()
        ]
        out.append(_table(["codec", "library", "options", "versions"], rows))

    out += ["", f"{h}# Conventions", "", CONVENTIONS]

    if lossy:
        out += [f"{h}# Appendix: average points of every lossy setting", ""]
        rows = []
        for n in lossy:
            a = aggs[n]
            for p in a["points"]:
                rows.append(
                    [
                        f"`{n}`",
                        f"{a['param']}={_setting_str(p['setting'])}",
                        _fmt(p["bpp"], 4),
                        _fmt(p["psnr"]),
                        _fmt(p["ms_ssim"], 4),
                        _fmt(p["encode_s_median"], 3),
                        _fmt(p["decode_s_median"], 3),
                        "" if p["complete"] else f"partial {p['n']}",
                    ]
                )
        out.append(
            _table(["codec", "setting", "bpp", "PSNR", "MS-SSIM", "enc s", "dec s", ""], rows)
        )
    return "\n".join(out) + "\n"


def results_json(results: BenchResults, summ: Summary) -> dict[str, Any]:
    cfg = asdict(results.config)
    cfg = {k: (str(v) if isinstance(v, Path) else v) for k, v in cfg.items()}
    return {
        "config": cfg,
        "environment": results.environment,
        "images": results.images,
        "skipped": results.skipped,
        "wall_seconds": results.wall_seconds,
        **summ,
        "records": results.records,
    }


def write_outputs(results: BenchResults) -> dict[str, Path]:
    """Write results.json, report.md and (unless disabled) the plots into the output folder."""
    out_dir = Path(results.config.out_dir)
    summ = summary(results)
    paths = {"json": out_dir / "results.json", "report": out_dir / "report.md"}
    paths["json"].write_text(json.dumps(results_json(results, summ), indent=1, allow_nan=False))
    html = results.config.html
    crops = None
    if results.config.plots or html:
        from .plots import comparison_crops

        crops = comparison_crops(results, summ)
    if results.config.plots:
        from .plots import plot_crops, plot_rd

        paths.update(plot_rd(results, summ, out_dir))
        crop_png = plot_crops(crops, results, out_dir)
        if crop_png:
            paths["crops"] = crop_png
    paths["report"].write_text(render_markdown(results, summ))
    if html:
        from .html import write_html

        paths["html"] = write_html(results, summ, paths, crops)
    return paths
