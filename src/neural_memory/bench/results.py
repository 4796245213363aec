"""What a benchmark run produced: the records (one dict per measured item) with the context a
report needs, written as ``results.jsonl`` while measuring and ``results.json`` at the end."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .codecs import Setting
from .config import BenchConfig

RESULTS_JSONL = "results.jsonl"
#: decoded crops of the crop figure (plots.comparison_crops); they live and die with the records
CROPS_DIR = "crops"

#: One measured item (image, codec, setting): sizes, quality, times, memory, checks.
Record = dict[str, Any]


def item_key(image_name: str, codec: str, setting: Setting) -> str:
    """Stable identity of a measurement, used by --resume."""
    return f"{image_name}|{codec}|{json.dumps(setting)}"


@dataclass
class BenchResults:
    """What a run produced: the records (one dict per item) plus context for the report."""

    config: BenchConfig
    records: list[Record]
    codecs: list[str]
    skipped: dict[str, str] = field(default_factory=dict)
    images: list[str] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    wall_seconds: float = 0.0

    def ok(self) -> list[Record]:
        return [r for r in self.records if r.get("status") == "ok"]

    @classmethod
    def load(cls, out_dir: Path) -> BenchResults:
        """Results of a finished run, read back from its results.json (for docs/scripts)."""
        raw = json.loads((Path(out_dir) / "results.json").read_text())
        cfg = dict(raw["config"])
        cfg["images_dir"] = Path(cfg["images_dir"])
        cfg["out_dir"] = Path(cfg["out_dir"])
        cfg["bpp_points"] = tuple(cfg["bpp_points"])
        return cls(
            config=BenchConfig(**cfg),
            records=raw["records"],
            codecs=sorted(raw["aggregates"]),
            skipped=raw["skipped"],
            images=raw["images"],
            environment=raw["environment"],
            wall_seconds=raw["wall_seconds"],
        )


def read_jsonl(path: Path) -> list[Record]:
    """Records from a results file, skipping a torn last line from an interrupted run."""
    records = []
    if not path.exists():
        return records
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records
