"""Encode and decode options: the one place that names the modes, the presets and the limits,
and checks what a user asked for.

Every front end builds the same frozen :class:`EncodeOptions` (or :class:`DecodeOptions`): the
Python API from its keywords, the CLI from its flags, the Pillow plugin from ``save()``
parameters, batches pass it to their workers and the benchmark builds it for our codec. The
checks run once, in ``__post_init__``, and their messages name both spellings of an option,
the CLI flag and the Python keyword (``--lambda`` / ``lmbda=``).

This module is a leaf: it imports nothing of the package but ``errors``, so every layer (the
container, the engines, the API, the CLI) may read it.

>>> EncodeOptions().mode, EncodeOptions(near=2).mode
('lossy', 'near-lossless')
>>> EncodeOptions(mode="lossless", bpp=0.5)
Traceback (most recent call last):
...
neural_memory.errors.OptionError: --bpp / bpp= applies to lossy mode only
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields

from neural_memory.errors import OptionError

LOSSY = "lossy"
LOSSLESS = "lossless"
NEAR_LOSSLESS = "near-lossless"
MODES = (LOSSY, LOSSLESS, NEAR_LOSSLESS)

#: Lossy presets and the training steps each runs at high rates (the presets differ in
#: training length only; lossy/encoding/presets.py builds the model and schedule from these,
#: and scales the steps at lower rates, where a step costs more or less, to about the same
#: time).
#: ``default`` fits issue 15's budget of 120 s per Kodak image (768 x 512, both threads, quiet
#: machine): with the wider networks of 2026-12-05 (synthesis 48, ARM 24) a step costs ~1.25x
#: the old one, and 3000 steps took 112-148 s (kodim01, kodim23) as the VM's speed varied
#: (sgemm 331-421 GFLOP/s); 2500 steps took 102-107 s in a last run, 119-147 s in its slow
#: state. ``slow`` fills the 15-minute budget the same way: 16000 steps on the default's
#: slowest encode (kodim23 at lambda 1e-3) took 664 s and 0.92 GB on 2 threads (2026-12-07,
#: sgemm 158 GFLOP/s), room for the VM's slow state (up to ~1.35x). With session 18's model
#: they put kodim01/07/14/23 at -11.0 % against AVIF s1 on the mean curves (session 14's
#: 12000-step ``slow``, session 13's model: -3.4 %; docs/BENCHMARKS.md).
PRESET_STEPS = {"fast": 300, "default": 2500, "slow": 16000}
PRESETS = tuple(PRESET_STEPS)
DEFAULT_PRESET = "default"
#: cjxl-style ``-e / --effort 1-10`` -> preset: 1-3 fast, 4-7 default, 8-10 slow.
EFFORT_RANGE = (1, 10)


def preset_for_effort(effort: int) -> str:
    """The preset a cjxl-style effort (1-10) stands for.

    >>> preset_for_effort(1), preset_for_effort(7), preset_for_effort(9)
    ('fast', 'default', 'slow')
    """
    effort = _integer("effort", effort, *EFFORT_RANGE)
    return "fast" if effort <= 3 else "default" if effort <= 7 else "slow"


#: Image size limits: the container refuses larger headers, so nothing larger is ever
#: encoded, decoded or rendered (decoding at another size included).
MAX_SIDE = 1 << 16  # 65536 pixels on a side
MAX_PIXELS = 1 << 28  # 268 M pixels: far beyond 4096x4096, far below an absurd allocation
#: Decoding refuses a file whose image (or requested render size) has more pixels than this,
#: before allocating anything, unless the caller raises it (``max_pixels=`` /
#: ``--max-pixels``): 64 Mpixel, e.g. 8192x8192, so a small hostile header cannot make a
#: decoder take gigabytes. The C library's NMEM_DEFAULT_MAX_PIXELS is the same number.
DEFAULT_MAX_DECODE_PIXELS = 1 << 26

#: Quality of a lossy output format (JPEG, AVIF) when decoding without
#: ``decode -q / --quality``: high, because a decoded image is usually an end product (JPEG q95
#: stays within a few levels of the pixels; Pillow's own default, 75, is 30+ levels off).
DEFAULT_OUTPUT_QUALITY = 95
#: Output formats that can be lossy (``decode -q`` sets their quality; JPEG and AVIF are lossy
#: without it, WebP is then written lossless), and those that keep a palette only.
LOSSY_OUTPUT_SUFFIXES = (".jpg", ".jpeg", ".webp", ".avif")
PALETTE_OUTPUT_SUFFIXES = (".gif",)

#: Ranges of the lossy rate and effort options (closed unless noted).
LMBDA_RANGE = (0.0, 10.0)  # open at both ends
BPP_RANGE = (0.01, 8.0)
PSNR_RANGE = (15.0, 60.0)
THREADS_RANGE = (1, 256)
STEPS_RANGE = (1, 1_000_000)
QUALITY_RANGE = (0.0, 100.0)
#: The most frames a multi-frame input may have for ``--frame`` to pick one.
MAX_FRAMES = 1 << 16

#: ``quality`` 0-100 (``-q`` / ``--quality``, Pillow's ``quality=``), as cwebp, cjxl and avifenc
#: take it, is a lambda on a log scale: lambda = 0.02 at quality 0 down to 1e-4 at quality
#: 100, log-linear in between (quality 57 is about the default lambda 1e-3). A larger quality
#: is a smaller lambda, so never a smaller file (up to training noise).
QUALITY_LAMBDA = (0.02, 1e-4)


def quality_to_lmbda(quality: float) -> float:
    """The lambda a ``quality`` (0-100) stands for: log-linear from
    ``QUALITY_LAMBDA[0]`` at 0 to ``QUALITY_LAMBDA[1]`` at 100.

    >>> round(quality_to_lmbda(0), 6), round(quality_to_lmbda(100), 6)
    (0.02, 0.0001)
    >>> quality_to_lmbda(80) < quality_to_lmbda(50)
    True
    """
    quality = _number("quality", quality, *QUALITY_RANGE)
    high, low = QUALITY_LAMBDA
    return math.exp(math.log(high) + (math.log(low) - math.log(high)) * quality / 100.0)


#: How each option is spelled on the command line and in Python, for messages.
_SPELLING = {
    "mode": "--lossless / --near-lossless / mode=",
    "near": "--near-lossless K / near=",
    "lmbda": "--lambda / lmbda=",
    "bpp": "--bpp / bpp=",
    "psnr": "--psnr / psnr=",
    "quality": "-q / --quality / quality=",
    "preset": "--preset / preset=",
    "device": "--device / device=",
    "seed": "--seed / seed=",
    "threads": "--threads / threads=",
    "steps": "--steps / steps=",
    "size": "--size / size=",
    "scale": "--scale / scale=",
    "max_pixels": "--max-pixels / max_pixels=",
    "frame": "--frame / frame=",
    "effort": "-e / --effort",
    "output_quality": "decode -q / --quality / output_quality=",
}
_RATE = ("lmbda", "bpp", "psnr", "quality")
_LOSSY_ONLY = (*_RATE, "steps")


def max_near(bit_depth: int) -> int:
    """The largest near-lossless error bound k for a bit depth: 2^depth - 1 (255 for 8-bit,
    65535 for 16-bit). The container stores k as a varint, the engine codes every k up to
    this, and a larger k would allow nothing more (every sample is then within reach).

    >>> max_near(8), max_near(16)
    (255, 65535)
    """
    return (1 << bit_depth) - 1


def check_size(width: int, height: int) -> bool:
    """Whether a ``width`` x ``height`` image is within the limits."""
    return 1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE and width * height <= MAX_PIXELS


def _fail(name: str, text: str) -> OptionError:
    return OptionError(f"{_SPELLING[name]} {text}")


def _number(name: str, value, low: float, high: float, open_ends: bool = False) -> float:
    """``value`` as a float within [low, high] (or (low, high)), else an OptionError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
        raise _fail(name, f"must be a number, got {value!r}")
    value = float(value)
    inside = low < value < high if open_ends else low <= value <= high
    if not inside:
        left, right = "()" if open_ends else "[]"
        raise _fail(name, f"must be in {left}{low:g}, {high:g}{right}, got {value:g}")
    return value


def _integer(name: str, value, low: int, high: int) -> int:
    """``value`` as an int within [low, high], else an OptionError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise _fail(name, f"must be an integer, got {value!r}")
    value = int(value)
    if not low <= value <= high:
        raise _fail(name, f"must be in [{low}, {high}], got {value}")
    return value


@dataclass(frozen=True)
class EncodeOptions:
    """What to encode with; every field is checked on construction (:class:`OptionError`).

    ``mode`` is ``"lossy"``, ``"lossless"`` or ``"near-lossless"``; left as None it is
    near-lossless when ``near`` is given, else lossy. ``near`` is the near-lossless bound k
    (every sample within +-k). Lossy rate control takes at most one of ``lmbda`` (the
    rate-distortion trade-off), ``bpp`` (a target size) or ``psnr`` (a target quality); with
    none, a default lambda; ``quality`` (0-100) is a lambda on the scale of
    :func:`quality_to_lmbda`. ``preset`` sets the training length, ``steps`` overrides it (for
    tests and experiments). ``device`` is the torch device of lossy training, ``threads`` caps
    its CPU threads for the call, ``seed`` fixes its randomness. ``strip`` drops the input's
    colour profile, EXIF and XMP instead of storing them; ``frame`` picks one frame (from 0)
    of a multi-frame input file (animated GIF/PNG/WebP, multi-page TIFF), which is refused
    without it.
    """

    mode: str | None = None
    near: int = 0
    lmbda: float | None = None
    bpp: float | None = None
    psnr: float | None = None
    preset: str = DEFAULT_PRESET
    device: str = "cpu"
    seed: int = 0
    threads: int | None = None
    steps: int | None = None
    quality: float | None = None
    strip: bool = False
    frame: int | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise the values once, here
        set_(self, "near", _integer("near", self.near, 0, max_near(16)))
        if self.mode is None:
            set_(self, "mode", NEAR_LOSSLESS if self.near else LOSSY)
        if self.mode not in MODES:
            raise _fail("mode", f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.mode == NEAR_LOSSLESS and self.near < 1:
            raise OptionError(
                "near-lossless needs an error bound K >= 1 (--near-lossless K, near=K); "
                "for K = 0 use lossless"
            )
        if self.mode != NEAR_LOSSLESS and self.near:
            raise _fail("near", f"(here {self.near}) only applies to near-lossless mode")
        if self.mode != LOSSY:
            for name in _LOSSY_ONLY:
                if getattr(self, name) is not None:
                    raise _fail(name, "applies to lossy mode only")
        given = [name for name in _RATE if getattr(self, name) is not None]
        if len(given) > 1:
            raise OptionError("give at most one of " + ", ".join(_SPELLING[name] for name in _RATE))
        for name, (low, high), open_ends in (
            ("lmbda", LMBDA_RANGE, True),
            ("bpp", BPP_RANGE, False),
            ("psnr", PSNR_RANGE, False),
            ("quality", QUALITY_RANGE, False),
        ):
            if getattr(self, name) is not None:
                set_(self, name, _number(name, getattr(self, name), low, high, open_ends))
        if self.preset not in PRESETS:
            raise _fail(
                "preset", f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}"
            )
        if not isinstance(self.device, str) or not self.device:
            raise _fail(
                "device", f"must name a torch device, e.g. cpu or cuda, got {self.device!r}"
            )
        set_(self, "seed", _integer("seed", self.seed, 0, 2**63 - 1))
        for name, (low, high) in (("threads", THREADS_RANGE), ("steps", STEPS_RANGE)):
            if getattr(self, name) is not None:
                set_(self, name, _integer(name, getattr(self, name), low, high))
        if self.frame is not None:
            set_(self, "frame", _integer("frame", self.frame, 0, MAX_FRAMES - 1))
        set_(self, "strip", bool(self.strip))

    @property
    def rate_lmbda(self) -> float | None:
        """The lambda this asks for: ``lmbda``, or ``quality`` mapped by
        :func:`quality_to_lmbda`; None when the rate comes from ``bpp``/``psnr`` or the
        default."""
        if self.quality is not None:
            return quality_to_lmbda(self.quality)
        return self.lmbda

    @classmethod
    def from_keywords(cls, **keywords) -> EncodeOptions:
        """Build from keywords, with an :class:`OptionError` (not a TypeError) for a name
        that is no option."""
        unknown = sorted(set(keywords) - {f.name for f in fields(cls)})
        if unknown:
            raise OptionError(f"unknown encode option(s): {', '.join(unknown)}")
        return cls(**keywords)

    def check_image(self, bit_depth: int) -> None:
        """The checks that depend on the image: lossy takes 8-bit images only, and the
        near-lossless bound is at most :func:`max_near` of the bit depth."""
        if self.mode == LOSSY and bit_depth != 8:
            raise OptionError("lossy mode takes 8-bit images; use lossless or near-lossless")
        if self.near > max_near(bit_depth):
            raise _fail(
                "near",
                f"must be at most {max_near(bit_depth)} for {bit_depth}-bit images, "
                f"got {self.near}",
            )


@dataclass(frozen=True)
class DecodeOptions:
    """Render size of a lossy file: ``size=(width, height)`` or ``scale``, not both (lossless
    files decode at their own size only); ``max_pixels``: the largest image (stored or
    rendered) to decode, default :data:`DEFAULT_MAX_DECODE_PIXELS`. For image files:
    ``strip`` writes no colour profile, EXIF or XMP; ``output_quality`` (0-100,
    ``decode -q``) is the quality of a lossy output format (JPEG, lossy WebP, AVIF),
    :data:`DEFAULT_OUTPUT_QUALITY` when not given."""

    size: tuple[int, int] | None = None
    scale: float | None = None
    max_pixels: int | None = None
    strip: bool = False
    output_quality: int | None = None

    def __post_init__(self) -> None:
        if self.output_quality is not None:
            quality = _integer("output_quality", self.output_quality, 0, 100)
            object.__setattr__(self, "output_quality", quality)
        object.__setattr__(self, "strip", bool(self.strip))
        if self.size is not None and self.scale is not None:
            raise OptionError("give either --size / size= or --scale / scale=, not both")
        if self.scale is not None:
            scale = _number("scale", self.scale, 0.0, float(MAX_SIDE), open_ends=True)
            object.__setattr__(self, "scale", scale)
        if self.size is not None:
            width, height = (int(v) for v in self.size)
            if not check_size(width, height):
                raise _fail("size", f"{width}x{height} is out of range")
            object.__setattr__(self, "size", (width, height))
        if self.max_pixels is not None:
            limit = _integer("max_pixels", self.max_pixels, 1, MAX_PIXELS)
            object.__setattr__(self, "max_pixels", limit)

    @property
    def pixel_limit(self) -> int:
        return DEFAULT_MAX_DECODE_PIXELS if self.max_pixels is None else self.max_pixels

    @property
    def resizes(self) -> bool:
        return self.size is not None or self.scale is not None

    def output_size(self, width: int, height: int) -> tuple[int, int] | None:
        """The size to render a ``width`` x ``height`` image at (None: its own size)."""
        if self.scale is not None:
            size = (max(1, round(width * self.scale)), max(1, round(height * self.scale)))
            if not check_size(*size):
                raise _fail("scale", f"{self.scale:g} gives {size[0]}x{size[1]}: out of range")
            return size
        return self.size
