"""Configuration of one benchmark run."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from neural_memory.options import DEFAULT_PRESET, EncodeOptions

from .codecs import Setting

#: Rates at which the report tabulates PSNR (bpp), by interpolation along each curve.
DEFAULT_BPP_POINTS = (0.25, 0.5, 0.75, 1.0)


@dataclass
class BenchConfig:
    """Everything that defines a run; saved into results.json so a report says how it was made.

    ``settings`` overrides the swept settings of single codecs (codec name -> values), e.g.
    ``{"jpeg-420": [10, 50, 90]}``; ``lambdas`` and ``near`` apply to our codec (and ``near``
    to every near-lossless codec) unless ``settings`` names them.
    """

    images_dir: Path
    out_dir: Path = Path("bench-results")
    codecs: list[str] = field(default_factory=lambda: ["all"])
    exclude: list[str] = field(default_factory=list)
    limit: int | None = None
    images: list[str] | None = None  # names (with or without extension) to keep
    jobs: int = field(default_factory=lambda: os.cpu_count() or 1)
    resume: bool = False
    lambdas: list[float] | None = None
    near: list[int] | None = None
    settings: dict[str, list[Setting]] = field(default_factory=dict)
    bpp_points: tuple[float, ...] = DEFAULT_BPP_POINTS
    anchors: str = "auto"  # "auto" | "kodak" | "none"
    plots: bool = True
    html: bool = False  # also write report.html (self-contained page with a comparison slider)
    crop_bpp: float = 0.5
    crop_image: str | None = None
    crop_size: int = 192
    title: str | None = None
    preset: str = DEFAULT_PRESET  # of our lossy codec
    device: str = "cpu"  # of our lossy codec
    progress: bool = True
    report_only: bool = False
    command: str | None = None  # recorded in the report; defaults to sys.argv

    def our_options(self) -> EncodeOptions:
        """The base options of our codec in this run (each setting adds its rate or bound)."""
        return EncodeOptions(preset=self.preset, device=self.device)
