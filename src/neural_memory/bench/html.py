"""A self-contained HTML report: tables, RD plots and an original/decoded slider.

One file with everything inlined (plots and crops as base64 PNG data, a few lines of
script for the slider), so it can be mailed, attached to an issue or opened offline.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np

from .codecs import LOSSLESS, LOSSY, NEAR_LOSSLESS
from .plots import CropSet
from .results import BenchResults
from .summary import Summary

_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
tr.ours td{font-weight:600;background:#fffbe6}
img.plot{max-width:100%;border:1px solid #eee}
.cmp{position:relative;display:inline-block;line-height:0;border:1px solid #999}
.cmp img{image-rendering:pixelated;width:512px;height:512px}
.cmp .over{position:absolute;top:0;left:0;overflow:hidden;width:50%;height:100%;
border-right:2px solid #f33}
.cmp .over img{max-width:none}
.labels{display:flex;justify-content:space-between;width:514px;font-size:13px}
"""

_SCRIPT = """
const crops = JSON.parse(document.getElementById('crop-data').textContent);
const pick = document.getElementById('pick'), slider = document.getElementById('slider');
const dec = document.getElementById('decoded'), over = document.getElementById('over');
const label = document.getElementById('right-label');
function show() {
  const c = crops[pick.value];
  dec.src = 'data:image/png;base64,' + c.png;
  label.textContent = c.label;
}
pick.addEventListener('change', show);
slider.addEventListener('input', () => { over.style.width = slider.value + '%'; });
show();
"""


def _png_b64(pixels: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _file_b64(path: Path) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _fmt(value: float | None, digits: int = 2, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _table(header: list[str], rows: list[tuple[list[str], bool]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        f"<tr{' class=ours' if ours else ''}>"
        + "".join(f"<td>{html.escape(c)}</td>" for c in cells)
        + "</tr>"
        for cells, ours in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _lossy_tables(summ: Summary) -> str:
    aggs = summ["aggregates"]
    at_bpp = summ["psnr_at_bpp"]
    bpps = sorted({b for row in at_bpp.values() for b in row}, key=float)
    rows = []
    for name, values in at_bpp.items():
        label = aggs[name]["label"] if name in aggs else name.replace("published:", "") + " *"
        ours = name in aggs and aggs[name]["ours"]
        rows.append(([label] + [_fmt(values.get(b)) for b in bpps], ours))
    out = "<h3>PSNR (dB) at fixed rates</h3>"
    out += _table(["codec"] + [f"{b} bpp" for b in bpps], rows)
    if any(name.startswith("published:") for name in at_bpp):
        out += "<p>* published curve (Kodak), not measured here.</p>"
    bd = summ["bd_rate_psnr"]
    anchors = [
        a
        for a in ("webp", "avif-444-psnr-s1", "published:webp", "published:vtm")
        if any(a in row for row in bd.values())
    ]
    if anchors:
        rows = []
        for name, row in bd.items():
            cells = [aggs[name]["label"]] + [
                "n/a" if row.get(a) is None else _fmt(row[a], 1, signed=True) + "%" for a in anchors
            ]
            rows.append((cells, aggs[name]["ours"]))
        out += "<h3>BD-rate (PSNR) against anchors (negative = smaller files)</h3>"
        out += _table(["codec"] + [f"vs {a}" for a in anchors], rows)
    return out


def _exact_tables(summ: Summary) -> str:
    aggs = summ["aggregates"]
    out = ""
    for mode, title in ((LOSSLESS, "Lossless"), (NEAR_LOSSLESS, "Near-lossless")):
        rows = []
        for agg in aggs.values():
            if agg["mode"] != mode:
                continue
            for point in agg["points"]:
                check = point["all_exact"] if mode == LOSSLESS else point["all_within_bound"]
                setting = "" if mode == LOSSLESS else f" {point['setting']}"
                rows.append(
                    (
                        [
                            agg["label"] + setting,
                            _fmt(point["bpsp"], 3),
                            str(point["max_error"]),
                            "yes" if check else "NO",
                            _fmt(point["encode_s_median"]),
                            _fmt(point["decode_s_median"]),
                        ],
                        agg["ours"],
                    )
                )
        if rows:
            out += f"<h3>{title}</h3>" + _table(
                ["codec", "bpsp", "max error", "checked", "encode s", "decode s"], rows
            )
    return out


def render_html(
    results: BenchResults, summ: Summary, plots: dict[str, Path], crops: CropSet | None
) -> str:
    """The whole page as a string."""
    import json

    cfg = results.config
    title = cfg.title or f"neural-memory benchmark: {Path(cfg.images_dir).name}"
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{len(results.images)} images from <code>{html.escape(str(cfg.images_dir))}</code>; "
        "bpp = 8 x file bytes / pixels; PSNR over RGB with the MSE pooled over channels; "
        "dataset figures are means of per-image values; BD-rate by PCHIP interpolation of "
        "log-rate over the common PSNR range.</p>",
    ]
    if any(a["mode"] == LOSSY for a in summ["aggregates"].values()):
        parts.append("<h2>Lossy</h2>")
        for key in ("rd_psnr", "rd_msssim"):
            if key in plots and Path(plots[key]).is_file():
                parts.append(
                    f"<img class=plot alt='{key}' src='data:image/png;base64,"
                    f"{_file_b64(plots[key])}'>"
                )
        parts.append(_lossy_tables(summ))
        decoded = [
            (f"{label}: {bpp:.3f} bpp, {quality:.2f} dB", pixels)
            for label, bpp, quality, pixels in (crops.decoded if crops else [])
        ]
        if crops and decoded:
            original = crops.original
            data = {
                str(i): {"label": label, "png": _png_b64(c)} for i, (label, c) in enumerate(decoded)
            }
            options = "".join(
                f"<option value={i}>{html.escape(label)}</option>"
                for i, (label, _) in enumerate(decoded)
            )
            parts += [
                "<h2>Look for yourself</h2>",
                f"<p>A {original.shape[1]}x{original.shape[0]} crop, enlarged. Drag the slider: "
                "left of the red line is the decoded image you pick, right is the original.</p>",
                f"<p><select id=pick>{options}</select></p>",
                "<div class=labels><span id=right-label></span><span>original</span></div>",
                "<div class=cmp>",
                f"<img id=original alt=original src='data:image/png;base64,{_png_b64(original)}'>",
                "<div class=over id=over><img id=decoded alt=decoded></div></div>",
                "<p><input type=range id=slider min=0 max=100 value=50 style='width:514px'></p>",
                f"<script type=application/json id=crop-data>{json.dumps(data)}</script>",
                f"<script>{_SCRIPT}</script>",
            ]
    exact = _exact_tables(summ)
    if exact:
        parts += ["<h2>Lossless and near-lossless</h2>", exact]
    parts.append("</body></html>")
    return "".join(parts)


def write_html(
    results: BenchResults, summ: Summary, plots: dict[str, Path], crops: CropSet | None = None
) -> Path:
    """Write ``report.html`` into the run's output folder and return its path."""
    out = Path(results.config.out_dir) / "report.html"
    out.write_text(render_html(results, summ, plots, crops), encoding="utf-8")
    return out
