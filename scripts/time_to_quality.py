"""Time-to-quality instrument for the lossy encoder: BD-rate against AVIF 4:4:4 tune=psnr s1
and WebP as a function of training steps and encode seconds, on one fixed development set.

Every decision about the lossy model or its training goes through this command: train a
configuration at several budgets (step counts), and read how far each budget gets against the
anchors measured on the same images in the same run. Records go to a JSON-lines file, one per
(configuration, image, lambda, steps); finished records are skipped, so an interrupted run
resumes where it stopped.

    # the current encoder at two budgets, quick set (256x256 crops, three lambdas)
    PYTHONPATH=src python scripts/time_to_quality.py --label base --steps 300,850
    # one change, named and measured the same way
    PYTHONPATH=src python scripts/time_to_quality.py --label lr05 --steps 850 --set lr=0.05
    # the table (and a plot) of every label in the file
    PYTHONPATH=src python scripts/time_to_quality.py --report --plot docs/lossy-ttq.png

``--set KEY=VALUE`` overrides a field of the preset's TrainConfig or ArchConfig (for example
``syn_hidden=32`` or ``arm_hidden=24``). ``--full`` uses the full-size development images
(Kodak 768x512, CLIC crops 768x512) and four lambdas instead of the quick crops.

Why this set: four Kodak images with different content (kodim01 texture, kodim07 edges and
flat areas, kodim14 strong edges, kodim23 smooth colour; the ones the slow-preset target
names) and two CLIC 2025 photographs (not Kodak-like chroma). The CLIC crops are taken at the
top-left third of the image, away from the centre crops the shipped ARM prior was fitted on.
Seconds are wall-clock for the whole encode (training, quantisation, coding) and depend on
the machine's load; steps do not.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from shared_data import DATA

if TYPE_CHECKING:
    from neural_memory.lossy.decoding.bitstream import ArchConfig
    from neural_memory.lossy.encoding.train import TrainConfig

DEV_IMAGES = (
    "kodak/kodim01",
    "kodak/kodim07",
    "kodak/kodim14",
    "kodak/kodim23",
    "clic2025/097cb426910ba8ce2525dd8bb7fb1777",
    "clic2025/b51d5fb537246482ef7a7ab63f093cab",
)
QUICK_LAMBDAS = (4e-3, 1e-3, 2.5e-4)
FULL_LAMBDAS = (0.01, 0.003, 0.001, 0.0003)
QUICK_CROP = (256, 256)
FULL_CROP = (512, 768)  # (height, width): a Kodak image is whole, a CLIC one is cropped
ANCHORS = ("avif-444-psnr-s1", "webp")


def dev_image(name: str, crop: tuple[int, int]) -> np.ndarray:
    """The development crop of one image: Kodak at its centre (portrait images turned
    sideways so every crop has the same shape), CLIC at the top-left third."""
    img = np.asarray(Image.open(DATA / f"{name}.png").convert("RGB"))
    if img.shape[0] > img.shape[1] and name.startswith("kodak/"):
        img = np.ascontiguousarray(np.rot90(img))
    ch, cw = min(crop[0], img.shape[0]), min(crop[1], img.shape[1])
    if name.startswith("clic2025/"):
        y, x = img.shape[0] // 3 - ch // 2, img.shape[1] // 3 - cw // 2
        y, x = max(0, y), max(0, x)
    else:
        y, x = (img.shape[0] - ch) // 2, (img.shape[1] - cw) // 2
    return np.ascontiguousarray(img[y : y + ch, x : x + cw])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


def load_records(path: Path) -> list[dict]:
    """The file's records, each once: encodes are deterministic, so a record appended twice
    (records copied between files) is one measurement, and counting it twice would give its
    image an extra point (the report then drops the images that lack it)."""
    if not path.exists():
        return []
    lines = dict.fromkeys(line for line in path.read_text().splitlines() if line.strip())
    return [json.loads(line) for line in lines]


def append(path: Path, rec: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(rec) + "\n")


def parse_overrides(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set needs KEY=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def _convert(value: str, current: object) -> object:
    if isinstance(current, bool):
        return value.lower() in ("1", "true", "yes")
    if isinstance(current, tuple):
        return tuple(int(v) for v in value.split(",") if v)
    return type(current)(value)


def configure(
    steps: int, overrides: dict[str, str], image: np.ndarray, lmbda: float
) -> tuple[ArchConfig, TrainConfig]:
    """The default preset's configurations for ``image`` at ``lmbda`` (as the encoder
    chooses them, encoder.image_preset) with ``steps`` and the overrides applied."""
    from neural_memory.lossy.encoding.encoder import image_preset

    arch, tcfg = image_preset("default", image, lmbda)
    t_fields = {f.name for f in dataclasses.fields(tcfg)}
    a_fields = {f.name for f in dataclasses.fields(arch)}
    t_changes: dict[str, object] = {"steps": steps}
    a_changes: dict[str, object] = {}
    for key, value in overrides.items():
        if key in t_fields:
            t_changes[key] = _convert(value, getattr(tcfg, key))
        elif key in a_fields:
            a_changes[key] = _convert(value, getattr(arch, key))
        else:
            raise SystemExit(f"unknown setting {key!r}: not a TrainConfig or ArchConfig field")
    return dataclasses.replace(arch, **a_changes), dataclasses.replace(tcfg, **t_changes)


def encode_ours(
    img: np.ndarray, lmbda: float, steps: int, overrides: dict[str, str], seed: int = 0
) -> dict:
    from neural_memory.container.nmem import Header, Mode, pack
    from neural_memory.lossy.decoding.decoder import decode_lossy
    from neural_memory.lossy.encoding.encoder import fit
    from neural_memory.lossy.encoding.heap import retained_heap

    h, w, c = img.shape
    t0 = time.perf_counter()  # the width choice (encoder.image_preset) is part of the encode
    arch, tcfg = configure(steps, overrides, img, lmbda)
    with retained_heap():
        payload = fit(img, arch, tcfg, lmbda, seed=seed)
    seconds = time.perf_counter() - t0
    data = pack(Header(Mode.LOSSY, w, h, c), {"LOSY": payload})
    rec = decode_lossy(payload, h, w, c)
    return {"bytes": len(data), "psnr": psnr(img, rec), "seconds": seconds}


def encode_anchor(img: np.ndarray, codec: str) -> list[dict]:
    from neural_memory.bench.codecs import get_codec

    spec = get_codec(codec)
    points = []
    for setting in spec.settings:
        data = spec.encode(img, setting)
        points.append(
            {"setting": setting, "bytes": len(data), "psnr": psnr(img, spec.decode(data))}
        )
    return points


def run(args: argparse.Namespace) -> None:
    crop = FULL_CROP if args.full else QUICK_CROP
    lambdas = args.lambdas or (FULL_LAMBDAS if args.full else QUICK_LAMBDAS)
    set_name = "full" if args.full else "quick"
    records = load_records(args.out)
    done = {(r["label"], r["image"], r.get("lmbda"), r.get("steps"), r["set"]) for r in records}
    overrides = parse_overrides(args.set)
    images = args.images or DEV_IMAGES
    for name in images:
        img = dev_image(name, crop)
        for codec in ANCHORS:
            key = (f"anchor:{codec}", name, None, None, set_name)
            if key in done:
                continue
            pts = encode_anchor(img, codec)
            append(args.out, {"label": key[0], "image": name, "set": set_name, "points": pts,
                              "pixels": img.shape[0] * img.shape[1]})  # fmt: skip
            print(f"{name}: anchor {codec} done", flush=True)
    for steps in args.steps:
        for name in images:
            img = dev_image(name, crop)
            for lmbda in lambdas:
                if (args.label, name, lmbda, steps, set_name) in done:
                    continue
                r = encode_ours(img, lmbda, steps, overrides, args.seed)
                r.update(label=args.label, image=name, lmbda=lmbda, steps=steps, set=set_name,
                         overrides=overrides, pixels=img.shape[0] * img.shape[1])  # fmt: skip
                if args.seed:
                    r["seed"] = args.seed
                append(args.out, r)
                bpp = 8 * r["bytes"] / r["pixels"]
                print(f"{args.label} {steps} steps {name} lambda {lmbda:g}: {bpp:.3f} bpp "
                      f"{r['psnr']:.2f} dB {r['seconds']:.1f} s", flush=True)  # fmt: skip


def summarise(records: list[dict], set_name: str) -> list[dict]:
    """Per (label, steps): mean BD-rate against each anchor over the images that have every
    lambda, the BD-rate against the first anchor on the mean curves (bpp and PSNR averaged
    over those images at each lambda and each anchor setting: the benchmark's dataset figure,
    bench.summary), and the median encode seconds."""
    from neural_memory.bench.bdrate import bd_rate

    anchors: dict[tuple[str, str], list[dict]] = {}
    runs: dict[tuple[str, int], dict[str, list[dict]]] = {}
    for r in records:
        if r["set"] != set_name:
            continue
        if r["label"].startswith("anchor:"):
            anchors[(r["label"][7:], r["image"])] = r["points"]
        else:
            runs.setdefault((r["label"], r["steps"]), {}).setdefault(r["image"], []).append(r)
    rows = []
    order = lambda kv: (kv[0][0], str(kv[0][1]).zfill(8))  # noqa: E731 (steps may be "mixed")
    for (label, steps), per_image in sorted(runs.items(), key=order):
        n_points = max(len(v) for v in per_image.values())
        row = {"label": label, "steps": steps, "images": 0, "seconds": None}
        secs = []
        bds: dict[str, list[float]] = {a: [] for a in ANCHORS}
        named: list[tuple[str, float]] = []  # (image, BD-rate against the first anchor)
        curves: list[tuple[list[dict], list[dict]]] = []  # (ours, first anchor's) per image
        for image, recs in sorted(per_image.items()):
            if len(recs) < n_points or n_points < 2:
                continue
            row["images"] += 1
            secs += [r["seconds"] for r in recs]
            rate = [8 * r["bytes"] / r["pixels"] for r in recs]
            qual = [r["psnr"] for r in recs]
            for a in ANCHORS:
                pts = anchors.get((a, image))
                if not pts:
                    continue
                px = recs[0]["pixels"]
                bd = bd_rate([8 * p["bytes"] / px for p in pts], [p["psnr"] for p in pts],
                             rate, qual)  # fmt: skip
                if bd is not None:
                    bds[a].append(bd)
                    if a == ANCHORS[0]:
                        named.append((image.rsplit("/", 1)[-1][:8], bd))
                        curves.append((recs, pts))
        for a in ANCHORS:
            row[a] = float(np.mean(bds[a])) if bds[a] else None
        row["per_image"] = named
        row["mean_curves"] = _mean_curves_bd(curves)
        row["seconds"] = float(np.median(secs)) if secs else None
        rows.append(row)
    return rows


def _mean_curves_bd(curves: list[tuple[list[dict], list[dict]]]) -> float | None:
    """BD-rate on the mean curves: each curve averaged over the images point by point (ours
    by lambda, the anchor by setting), as `neural-memory bench` reports a dataset; None when
    the images do not share their lambdas and settings. It weighs the images by their bits,
    so it differs from the mean of the images' BD-rates (slow16k-s19 on the four Kodak
    images: -11.0 % on the mean curves, -9.6 % as the mean over images)."""
    from neural_memory.bench.bdrate import bd_rate

    if not curves:
        return None
    ours_keys = {tuple(sorted(r["lmbda"] for r in recs)) for recs, _ in curves}
    anchor_keys = {tuple(sorted(p["setting"] for p in pts)) for _, pts in curves}
    if len(ours_keys) != 1 or len(anchor_keys) != 1:
        return None

    def mean_curve(per_image: list[list[dict]], key: str, pixels: list[int]) -> tuple:
        rows = [sorted(points, key=lambda p: p[key]) for points in per_image]
        sized = zip(rows, pixels, strict=True)
        rate = np.mean([[8 * p["bytes"] / px for p in r] for r, px in sized], 0)
        return rate, np.mean([[p["psnr"] for p in r] for r in rows], 0)

    pixels = [recs[0]["pixels"] for recs, _ in curves]
    ours = mean_curve([recs for recs, _ in curves], "lmbda", pixels)
    anchor = mean_curve([pts for _, pts in curves], "setting", pixels)
    return bd_rate(*anchor, *ours)


def compose(records: list[dict], spec: str) -> list[dict]:
    """Records of a configuration that switches between two measured ones by lambda:
    ``NEW=A+B`` takes label A's record for each (image, lambda) where A has one, else B's,
    relabelled NEW (in memory only); ``NEW=A@0.01,0.003+B`` takes A's only at those
    lambdas; ``NEW=A`` takes A's alone (one configuration whose steps differ by lambda, as
    a preset's do, which the report would otherwise list once per step count). A and B may
    differ in steps (the presets train longer at low rates). Encodes are deterministic, so
    these are the records the switching configuration would produce."""
    new, _, parts = spec.partition("=")
    first, _, second = parts.partition("+")
    first, _, only = first.partition("@")
    if not (new and first):
        raise SystemExit(f"--compose wants NEW=A, NEW=A+B or NEW=A@L1,L2+B, got {spec!r}")
    try:
        lambdas = {float(v) for v in only.split(",") if v}
    except ValueError:
        raise SystemExit(f"--compose: lambdas after @ must be numbers, got {only!r}") from None
    key = lambda r: (r["set"], r["image"], r.get("lmbda"))  # noqa: E731
    taken: dict[tuple, dict] = {}
    for label, wanted in ((first, lambdas), *([(second, set())] if second else [])):
        mine: dict[tuple, dict] = {}
        for r in records:
            if r["label"] != label or (wanted and r.get("lmbda") not in wanted):
                continue
            if key(r) in mine:
                raise SystemExit(
                    f"--compose: label {label!r} has several step counts for {r['image']} "
                    f"at lambda {r.get('lmbda')}; compose labels of one step count each"
                )
            mine[key(r)] = r
        taken = {**mine, **taken}
    steps = {r["steps"] for r in taken.values()}
    # A switch that trains longer at some lambdas is one configuration: its row says "mixed".
    common = steps.pop() if len(steps) == 1 else "mixed"
    return [{**r, "label": new, "steps": common} for r in taken.values()]


def report(args: argparse.Namespace) -> None:
    set_name = "full" if args.full else "quick"
    records = load_records(args.out)
    for spec in args.compose:
        records += compose(records, spec)
    rows = summarise(records, set_name)
    print(f"set {set_name}: mean BD-rate over the images (negative = smaller than the anchor)")
    print(f"{'label':24} {'steps':>6} {'images':>6} {'median s':>9} "
          + " ".join(f"{a:>18}" for a in ANCHORS))  # fmt: skip
    for r in rows:
        cells = " ".join(
            f"{r[a]:>+17.1f}%" if r[a] is not None else f"{'n/a':>18}" for a in ANCHORS
        )
        secs = f"{r['seconds']:9.1f}" if r["seconds"] is not None else f"{'':9}"
        print(f"{r['label']:24} {r['steps']:>6} {r['images']:>6} {secs} {cells}")
        if args.per_image:
            cells = ", ".join(f"{name} {v:+.1f}" for name, v in r["per_image"])
            curves = f"{r['mean_curves']:+.1f}" if r["mean_curves"] is not None else "n/a"
            print(" " * 25 + f"per image vs AVIF: {cells}; mean curves {curves}")
    if args.plot:
        plot(rows, args.plot, set_name)


def plot(rows: list[dict], path: Path, set_name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    full = max((r["images"] for r in rows), default=0)
    labels = sorted({r["label"] for r in rows})
    # one colour and marker per label (matplotlib's 10 default colours repeat beyond 10)
    colours = plt.get_cmap("tab20").colors
    styles = {lab: (colours[i % 20], "osD^v<>p"[i % 8]) for i, lab in enumerate(labels)}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    for ax, key, xlabel in ((axes[0], "steps", "training steps"),
                            (axes[1], "seconds", "median encode seconds")):  # fmt: skip
        for label in labels:
            pts = sorted((r[key], r[ANCHORS[0]]) for r in rows
                         if r["label"] == label and r[ANCHORS[0]] is not None
                         and r[key] is not None)  # fmt: skip
            if pts:
                colour, marker = styles[label]
                ax.plot(*zip(*pts, strict=True), marker=marker, color=colour, label=label)
            for r in rows:  # a budget measured on part of the set says so
                if r["label"] == label and r["images"] < full and r[ANCHORS[0]] is not None:
                    ax.annotate(f"{r['images']} img", (r[key], r[ANCHORS[0]]), fontsize=7,
                                textcoords="offset points", xytext=(4, 4))  # fmt: skip
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("BD-rate vs AVIF 4:4:4 tune=psnr s1 (%)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, ncol=2)
    fig.suptitle(f"time to quality, {set_name} development set (lower is better)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"plot: {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--label", default="base", help="name of the configuration measured")
    ap.add_argument("--steps", default="850", help="comma-separated budgets (training steps)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a TrainConfig / ArchConfig field (repeatable)")  # fmt: skip
    ap.add_argument("--lambdas", default=None, help="comma-separated lambdas (default: the set's)")
    ap.add_argument("--images", default=None, help="comma-separated subset of the dev images")
    ap.add_argument("--full", action="store_true", help="full-size images and four lambdas")
    ap.add_argument("--seed", type=int, default=0,
                    help="the encoder's seed (noise, row draws); one label per seed: the "
                    "spread over seeds is the noise a difference must exceed")  # fmt: skip
    ap.add_argument("--out", type=Path, default=Path("runs/ttq.jsonl"))
    ap.add_argument("--report", action="store_true", help="print the table, train nothing")
    ap.add_argument("--per-image", action="store_true", help="with --report: each image's BD")
    ap.add_argument("--plot", type=Path, default=None, help="with --report: write a PNG plot")
    ap.add_argument("--compose", action="append", default=[], metavar="NEW=A+B",
                    help="with --report: also a configuration made of label A's records, "
                    "B's where A has none (a preset switching between them by lambda); "
                    "A@0.01,0.003 takes A's at those lambdas only; NEW=A alone joins A's "
                    "step counts (a preset's steps differ by lambda); composes run in order, "
                    "so one may build on another")  # fmt: skip
    args = ap.parse_args()
    args.steps = [int(s) for s in args.steps.split(",")]
    args.lambdas = tuple(float(v) for v in args.lambdas.split(",")) if args.lambdas else None
    if args.images:
        wanted = args.images.split(",")
        args.images = tuple(n for n in DEV_IMAGES if n.split("/")[-1] in wanted or n in wanted)
    if args.report:
        report(args)
    else:
        run(args)
        report(args)


if __name__ == "__main__":
    main()
