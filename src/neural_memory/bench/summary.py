"""Summaries of a run: per-codec averages over the images, BD-rates, PSNR at fixed rates,
the published anchors; plain data that the Markdown report, the plots, the HTML page and
results.json all read."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Any

from . import codecs as codec_registry
from .anchors import load_kodak_published, looks_like_kodak
from .bdrate import bd_rate, quality_at_rate
from .codecs import LOSSLESS, LOSSY, NEAR_LOSSLESS
from .config import BenchConfig
from .quality import ms_ssim_db
from .results import BenchResults, Record

#: What :func:`summary` returns (also saved in results.json).
Summary = dict[str, Any]


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    if not vals or len(vals) != len(values):
        return None
    return float(sum(vals) / len(vals))


def _median(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(statistics.median(vals)) if vals else None


def aggregate(records: list[Record], images: list[str]) -> dict[str, Any]:
    """Per codec: one averaged point per setting, plus time/memory medians and checks."""
    n_images = len(images)
    groups: dict[str, dict[Any, list[Record]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        if r.get("status") == "ok":
            groups[r["codec"]][json.dumps(r["setting"])].append(r)
    out: dict[str, Any] = {}
    for codec, by_setting in groups.items():
        spec = codec_registry.get_codec(codec)
        points = []
        all_recs = []
        for skey, recs in by_setting.items():
            all_recs += recs
            points.append(
                {
                    "setting": json.loads(skey),
                    "n": len(recs),
                    "complete": len({r["image"] for r in recs}) == n_images,
                    "bpp": _mean([r["bpp"] for r in recs]),
                    "bpsp": _mean([r["bpsp"] for r in recs]),
                    "psnr": _mean([r.get("psnr") for r in recs]),
                    "ms_ssim": _mean([r.get("ms_ssim") for r in recs])
                    if spec.mode != LOSSLESS
                    else None,
                    "max_error": max(r["max_error"] for r in recs),
                    "all_exact": all(r.get("exact", False) for r in recs)
                    if spec.mode == LOSSLESS
                    else None,
                    "all_within_bound": all(r.get("within_bound", False) for r in recs)
                    if spec.mode == NEAR_LOSSLESS
                    else None,
                    "encode_s_median": _median([r["encode_s"] for r in recs]),
                    "decode_s_median": _median([r["decode_s"] for r in recs]),
                }
            )
        points.sort(key=lambda p: (p["bpp"] is None, p["bpp"] or 0.0))
        errors = sum(
            1 for r in records if r["codec"] == codec and r.get("status") not in ("ok", None)
        )
        out[codec] = {
            "label": spec.label,
            "family": spec.family,
            "mode": spec.mode,
            "param": spec.param,
            "library": spec.library,
            "options": spec.options,
            "ours": spec.ours,
            "points": points,
            "errors": errors,
            "encode_s_median": _median([r["encode_s"] for r in all_recs]),
            "decode_s_median": _median([r["decode_s"] for r in all_recs]),
            "encode_s_total": sum(r["encode_s"] for r in all_recs),
            "peak_rss_delta_mb_median": _median([r.get("peak_rss_delta_mb") for r in all_recs]),
            "peak_rss_delta_mb_max": max(
                (r.get("peak_rss_delta_mb") or 0.0 for r in all_recs), default=None
            ),
        }
    return out


def curve(agg: dict[str, Any], metric: str = "psnr") -> tuple[list[float], list[float]]:
    """(bpp, quality) of the complete points of one codec's aggregate."""
    pts = [p for p in agg["points"] if p["complete"] and p["bpp"] and p.get(metric) is not None]
    return [p["bpp"] for p in pts], [p[metric] for p in pts]


def published_anchors(config: BenchConfig, images: list[str]) -> dict[str, Any]:
    """Published Kodak curves, when the run is on Kodak (or forced)."""
    mode = config.anchors
    if mode == "none":
        return {}
    if mode == "auto" and not looks_like_kodak([Path(i) for i in images]):
        return {}
    return {k: v for k, v in load_kodak_published().items()}


def _lossy_curves(aggs: dict[str, Any], metric: str = "psnr") -> dict[str, tuple]:
    return {
        name: curve(a, metric)
        for name, a in aggs.items()
        if a["mode"] == LOSSY and len(curve(a, metric)[0]) >= 2
    }


def per_image_bd(
    records: list[Record], aggs: dict[str, Any], metric: str = "psnr"
) -> dict[str, dict[str, dict[str, float | None]]]:
    """BD-rate of each of our lossy codecs against every other lossy codec, image by image:
    ``{ours: {other: {image: percent or None}}}``.

    Why: the dataset BD-rate (on the mean curves) says where a codec stands on average; the
    per-image figures say *which* images it loses on, which the mean hides (Kodak at the
    default of 2026-12-06: +6.8 % against AVIF 4:4:4 tune=psnr s1 on the mean curves, from
    -7.1 % on kodim02 to +21.4 % on kodim09 image by image).

    >>> recs = [{"status": "ok", "codec": c, "image": "a.png", "bpp": b, "psnr": q}
    ...         for c, pts in (("nm", ((0.5, 30.0), (1.0, 33.0))),
    ...                         ("webp", ((0.6, 30.0), (1.2, 33.0))))
    ...         for b, q in pts]
    >>> aggs = {"nm": {"mode": LOSSY, "ours": True}, "webp": {"mode": LOSSY, "ours": False}}
    >>> round(per_image_bd(recs, aggs)["nm"]["webp"]["a.png"], 1)
    -16.7
    """
    pts: dict[str, dict[str, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        if r.get("status") == "ok" and r.get(metric) is not None and r.get("bpp"):
            pts[r["codec"]][r["image"]].append((r["bpp"], r[metric]))
    lossy = [n for n, a in aggs.items() if a["mode"] == LOSSY]
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for test in (n for n in lossy if aggs[n]["ours"]):
        out[test] = {}
        for other in (n for n in lossy if n != test):
            row: dict[str, float | None] = {}
            for image in sorted(set(pts[test]) & set(pts[other])):
                tr, tq = zip(*pts[test][image], strict=True)
                ar, aq = zip(*pts[other][image], strict=True)
                row[image] = bd_rate(ar, aq, tr, tq)
            if row:
                out[test][other] = row
    return out


def summary(results: BenchResults) -> Summary:
    """Everything the Markdown and plots need, as plain data (also saved in results.json)."""
    aggs = aggregate(results.records, results.images)
    anchors = published_anchors(results.config, results.images)
    curves = _lossy_curves(aggs)
    bd: dict[str, dict[str, float | None]] = {}
    for test, (tr, tq) in curves.items():
        bd[test] = {}
        for anchor, (ar, aq) in curves.items():
            bd[test][anchor] = bd_rate(ar, aq, tr, tq) if test != anchor else 0.0
        for name, pc in anchors.items():
            bd[test][f"published:{name}"] = bd_rate(pc.bpp, pc.psnr, tr, tq)
    at_bpp: dict[str, dict[str, float | None]] = {}
    at_bpp_msssim: dict[str, dict[str, float | None]] = {}
    ms_curves = _lossy_curves(aggs, "ms_ssim")
    for name, (r, q) in curves.items():
        at_bpp[name] = {str(b): quality_at_rate(r, q, b) for b in results.config.bpp_points}
    for name, (r, q) in ms_curves.items():
        qdb = [ms_ssim_db(v) for v in q]
        at_bpp_msssim[name] = {
            str(b): quality_at_rate(r, qdb, b) for b in results.config.bpp_points
        }
    for name, pc in anchors.items():
        at_bpp[f"published:{name}"] = {
            str(b): quality_at_rate(pc.bpp, pc.psnr, b) for b in results.config.bpp_points
        }
    versions = {}
    for name in aggs:
        try:
            versions[name] = codec_registry.get_codec(name).version()
        except Exception as exc:  # pragma: no cover
            versions[name] = f"? ({exc})"
    return {
        "aggregates": aggs,
        "bd_rate_psnr": bd,
        "bd_rate_psnr_per_image": per_image_bd(results.records, aggs),
        "psnr_at_bpp": at_bpp,
        "ms_ssim_db_at_bpp": at_bpp_msssim,
        "published": {k: asdict(v) for k, v in anchors.items()},
        "versions": versions,
    }
