"""Presets: model size and training length traded against encode time."""

from __future__ import annotations

from neural_memory.lossy.decoding.bitstream import ArchConfig
from neural_memory.lossy.encoding.train import TrainConfig
from neural_memory.options import PRESET_STEPS

DEFAULT_LMBDA = 1e-3


def initial_lmbda(target_bpp: float | None, target_psnr: float | None) -> float:
    """First guess of lambda for a target (fitted on full kodim23: 2e-3 -> 0.28 bpp / 33.5 dB,
    5e-4 -> 0.49 bpp / 37.1 dB; image dependent, the training loop corrects it)."""
    if target_bpp is not None:
        return min(0.05, max(1e-6, 2e-3 * (target_bpp / 0.28) ** -2.4))
    if target_psnr is not None:
        return min(0.05, max(1e-6, 2e-3 * 4.0 ** (-(target_psnr - 33.5) / 3.64)))
    return DEFAULT_LMBDA


# Network widths, by image size: the networks' weights are stored in the file, so a small
# image cannot pay for wide ones. On whole Kodak images (393,216 pixels; kodim07 + kodim23,
# 1500 steps, time-to-quality --full) synthesis 24 -> 48 hidden units took the BD-rate
# against AVIF s1 from +30.1 % to +22.7 % (64: +22.2 %) and the ARM 16 -> 24 to +22.0 %, for
# 1.2-1.3x the step time; on 256x256 crops (65,536 pixels, the quick set) 32 synthesis units
# had been 1.9 points worse than 24, and on a 24x32 image the wide networks made files
# larger at every rate. The switch sits between the two sizes measured (not tuned).
WIDE_FROM_PIXELS = 160_000
SYN_HIDDEN = (24, 48)  # (below WIDE_FROM_PIXELS, from it)
ARM_HIDDEN = (16, 24)
# ... and by what the image will cost: below this many latent bits at the analytic start
# (encoder.start_bits) the narrow synthesis is used. The 48-unit one has ~1,000 weights
# (~5.5 kbit coded), ~500 more than the 24-unit one: near a third of such a start
# (measurements: widths()).
NARROW_SYN_BELOW_START_BITS = 18_000
# The wider ARM only below this lambda (see widths()), the finest grids only below the other
# (see grids()): fixed costs that a small file cannot carry.
WIDE_ARM_BELOW_LMBDA = 2e-3
LOW_RATE_FROM_LMBDA = 5e-3
# The rate estimated on every latent from this lambda (see rate_stride()).
DENSE_RATE_FROM_LMBDA = 2e-3
# The upsampler's filter table (fixed_point.UP_TABLES; 1 is payload version 3): sharper
# per-stage filters than bicubic, at no cost in step or decode time. Real files at the
# default's steps on the six development images (time-to-quality --full, label v3): 23 of 24
# points closer to AVIF s1, by 2.7 points on average (0.9-4.6 on the Kodak images the table
# was not fitted on), BD-rate +3.1 % -> +0.2 % (docs/lossy.md, session 17).
UP_TABLE = 1
# Pre-concatenation filters (payload version 4, Cool-chic's): each grid filtered at its own
# level by a learned separable 7-tap kernel before the upsampler (model.prefilter_grids).
# Real files at the default's steps on the six development images (time-to-quality --full,
# label pf4 against v3): BD-rate against AVIF s1 +0.2 % -> -1.2 %, 17 of 24 points closer
# (the four Kodak images 1.9-3.9 points each, the two CLIC crops 0.8-1.8 further), for
# 39.1 against 35.6 ms a step (2 threads, kodim23, 1e-3; docs/lossy.md, session 18).
PREFILTER = True
# Training steps against options.PRESET_STEPS, from each lambda (highest first), so that a
# preset takes about the same time at every rate. Step times side by side
# (scripts/measure_step_time.py, kodim23, 2 threads): at 3e-3 31.9 ms with the rate on a 2x2
# lattice phase, 43.7 ms on every latent, so x0.73 keeps the time (2100 steps there gained
# nothing on kodim01 and kodim07). At 0.01 (14 grids) more steps keep paying: 4400 instead
# of 3000 brought five of six images 0.3-3.9 points closer to AVIF s1 at that point, but
# whole CLI encodes of kodim23 took 127.1 s at 0.01 with 4400 steps against 105.3 s at 1e-3
# in the same run (72.5 s with 3000 steps in an earlier one); x1.4 (3500) stays within the
# budget (95.2 s at 0.01, 92.7 s at 3e-3, 102.0 s at 1e-3 in a last run).
STEP_FACTORS = ((LOW_RATE_FROM_LMBDA, 1.4), (DENSE_RATE_FROM_LMBDA, 0.73))


def widths(pixels: int, lmbda: float, start_bits: float | None = None) -> tuple[int, int]:
    """(synthesis hidden units, ARM hidden units) for an image of ``pixels`` pixels coded
    at rate-distortion weight ``lmbda`` whose latents cost ``start_bits`` at the analytic
    start (None: not estimated).

    The synthesis is narrow where its weights would weigh on the file: on small images, and
    where the start's latents cost less than NARROW_SYN_BELOW_START_BITS (a simple image at
    a low rate; :func:`cost_decides_width` says when the cost is asked). 24 units instead of
    48 at the default preset's steps (colour images), against AVIF s1 at that point, by the
    start's cost (``scripts/start_bits.py``): every image measured below 18 kbit gained, the CLIC
    development crops at 0.01 (14.6 / 6.3 kbit) +7.4 -> -1.2 % and +16.4 -> -2.8 % (11 /
    15 % smaller files at -0.08 / +0.05 dB), CLIC b51d at 3e-3 (13.2 kbit) +9.6 -> +4.6 %,
    and two CID22 images at 0.01 that the choice was not tuned on (15.1 / 14.8 kbit) +13.2
    -> +8.0 % and -24.7 -> -29.5 %; above it, kodim02 at 0.01 (21.2 kbit) -9.4 -> -8.0 %,
    kodim23 (29.3 kbit) +4.2 -> +8.7 %, kodim01, 07 and 14 (51-83 kbit) 4.7-5.8 points
    worse; CLIC 097c at 3e-3 (33.7 kbit) would have gained (+14.8 -> +12.4 %), so the
    start's cost is a safe rather than a sharp test. 32 units sat between (097c at 0.01
    +1.6 %).

    The wider ARM pays at high rates only: its 488 more weights, at the ~5-6 bits per weight
    the ARM's layers are coded with, cost about 300-360 bytes, a large part of a low-rate
    file. Whole images, 2500 steps, session 10's quantisation, all six development images,
    ARM 16 instead of 24 (BD-rate against AVIF s1 at that point, interpolated): at lambda
    0.01 kodim23, CLIC 097c and b51d 4.6 / 6.9 / 10.1 % smaller *and* 0.03-0.07 dB better,
    kodim01, 07 and 14 0.2-1.9 % smaller and 0.02-0.10 dB worse; at 3e-3 smooth images
    gained (b51d +21.0 -> +10.8 %, 097c +21.4 -> +17.5 %, kodim07 and 23 0.6-1.0 points),
    textured ones lost 0.2-0.8 points (kodim01, kodim14): -2.6 points on average; at 1e-3
    ARM 24 was better on three of four (kodim07 1.7 % smaller at +0.06 dB), even on kodim23.

    >>> widths(768 * 512, 1e-3), widths(768 * 512, 3e-3), widths(256 * 256, 1e-3)
    ((48, 24), (48, 16), (24, 16))
    >>> widths(768 * 512, 1e-2, start_bits=15_000)
    (24, 16)
    """
    wide = pixels >= WIDE_FROM_PIXELS
    cheap = start_bits is not None and start_bits < NARROW_SYN_BELOW_START_BITS
    return SYN_HIDDEN[wide and not cheap], ARM_HIDDEN[wide and lmbda < WIDE_ARM_BELOW_LMBDA]


def cost_decides_width(pixels: int) -> bool:
    """Whether what an image of ``pixels`` pixels costs can change its widths (a small image
    has the narrow networks anyway), i.e. whether encoder.image_preset estimates it.

    >>> cost_decides_width(768 * 512), cost_decides_width(256 * 256)
    (True, False)
    """
    return pixels >= WIDE_FROM_PIXELS


LUMA = (0, 1, 2, 3, 4, 5, 6)
CHROMA = (2, 3, 4, 5, 6)


def grids(channels: int, lmbda: float = DEFAULT_LMBDA) -> tuple[int, ...]:
    """Latent grid levels for an image of ``channels`` channels coded at ``lmbda``: a 7-level
    pyramid for the first colour axis, 5-level ones (from quarter resolution) for the other
    two (see analytic_init.py; chroma from level 1 cost ~10 % more rate on Kodak crops).

    At low rates (``lmbda`` from LOW_RATE_FROM_LMBDA) each pyramid loses its finest level.
    The full-resolution grid holds almost nothing there and still costs: whole kodim23 at
    lambda 0.01 kept 0.12 % of its 393,216 latents non-zero and spent 175 of 4,552 bytes on
    them (each zero costs the Laplace table's floor, ~0.003 bits), its noise entered every
    training step, and it was 70 % of the latents a step works on. All six development
    images whole, 2500 steps, lambda 0.01 (BD-rate's lowest point against AVIF s1): without
    the full-resolution grid 2-12 % smaller files at -0.17..+0.20 dB, each image closer to
    AVIF (kodim01 +9.4 -> +1.9 %, kodim07 +12.6 -> +6.0 %, CLIC 097c +18.9 -> +9.7 %), and
    encodes 1.5x faster; chroma from level 3 as well: every image closer again (kodim07 ->
    +2.6 %, kodim23 +15.1 -> +10.2 %); chroma from level 4: mixed. At lambda 3e-3 the
    full-resolution grid pays (without it three of four images were worse, kodim01 +7.8 ->
    +13.1 %), and chroma from level 3 was mixed; the switch sits between the two rates.

    >>> grids(1), grids(3, 1e-2)
    ((0, 1, 2, 3, 4, 5, 6), (1, 2, 3, 4, 5, 6, 3, 4, 5, 6, 3, 4, 5, 6))
    """
    if lmbda >= LOW_RATE_FROM_LMBDA:
        return LUMA[1:] + CHROMA[1:] * (channels - 1)
    return LUMA + CHROMA * (channels - 1)


def preset_steps(name: str, lmbda: float) -> int:
    """Training steps of preset ``name`` at ``lmbda``: options.PRESET_STEPS times the
    factor of STEP_FACTORS for that rate, so each preset takes about the same time at every
    rate.

    >>> [preset_steps("default", lm) for lm in (1e-3, 3e-3, 1e-2)]
    [2500, 1825, 3500]
    """
    factor = next((f for start, f in STEP_FACTORS if lmbda >= start), 1.0)
    return round(PRESET_STEPS[name] * factor)


def rate_stride(lmbda: float) -> int:
    """The lattice stride of the training's rate estimate at ``lmbda`` (TrainConfig.rate_stride):
    every latent (1) from DENSE_RATE_FROM_LMBDA, else one random phase of a 2x2 lattice.

    Why by rate: the estimate on every latent pays most where the rate weighs most. All six
    development images whole, at about equal time (1825 steps on every latent against 2500
    on the lattice): at lambda 3e-3 every image closer to AVIF s1 at that point, by 1.2-5.2
    points (mean +10.8 -> +8.0 %; kodim01 +8.0 -> +2.8 %, kodim14 +2.9 -> -0.4 %); at 0.01
    (3500 steps both, the presets' count there) four of six closer, mean +4.2 -> +2.0 %
    (kodim14 -1.4 -> -6.0 %, kodim23 +8.7 -> +4.2 %; the CLIC crops 0.9-1.9 points further);
    at 1e-3 worse on both images measured (kodim01 +4.2 -> +5.6 %, kodim23 +12.8 -> +13.3 %).
    At equal steps (2500) it was better on three of four points (kodim01 at 3e-3 +8.0 ->
    +2.0 %, at 1e-3 +4.2 -> +4.8 %); a sparser lattice (3x3) was far worse (+8.0 -> +19.8 %), and
    keeping each phase's last gradient so that every latent gets a dense one (SAG) gained
    nothing: what pays is not the gradient's density but the estimate on every latent.

    >>> rate_stride(1e-3), rate_stride(3e-3)
    (2, 1)
    """
    return 1 if lmbda >= DENSE_RATE_FROM_LMBDA else 2


def level_step_ratio(lmbda: float) -> float:
    """The ratio of the quantisation steps of consecutive latent levels at ``lmbda``
    (TrainConfig.level_step_ratio): 1.8, coarser steps for the coarse levels than the 2 that
    gives every level's step the same energy in the image, except at low rates (from
    LOW_RATE_FROM_LMBDA), where 2 stays.

    Why, and why by rate: the steps are fixed by the analytic start, and 2 is the rule of
    thumb of an orthonormal transform, which the pyramid is not. Whole images at the
    default's steps, the six development images, against AVIF s1 at that point (session 15,
    docs/lossy.md): 1.8 brought all 18 points at 3e-3, 1e-3 and 3e-4 closer, by 0.1-3.2 points
    (mean -1.6), and the BD-rate from +4.4 % to +3.1 % (every image closer); at 0.01, where
    the finest grids are gone and the coarse levels carry the image, it was worse on four of
    five images (mean +1.5 points, CLIC b51d +7.3). On kodim01 at 1e-3 / kodim23 at 3e-3:
    2.25 +1.7 / +7.1 points, 1.6 -2.4 / +0.5.

    >>> level_step_ratio(1e-3), level_step_ratio(1e-2)
    (1.8, 2.0)
    """
    return 2.0 if lmbda >= LOW_RATE_FROM_LMBDA else 1.8


def preset(
    name: str,
    channels: int,
    pixels: int,
    lmbda: float,
    steps: int | None = None,
    start_bits: float | None = None,
) -> tuple[ArchConfig, TrainConfig]:
    """The model and schedule of a preset (names and step counts: options.PRESET_STEPS) for
    an image of ``pixels`` pixels coded at ``lmbda`` (the network widths: :func:`widths`,
    the latent grids: :func:`grids`, the steps: :func:`preset_steps`, the rate estimate:
    :func:`rate_stride`, the levels' steps: :func:`level_step_ratio`; under rate control, its
    first lambda); ``steps`` overrides the
    preset's training length; ``start_bits`` (encoder.start_bits) lets the widths follow
    what the image costs (encoder.image_preset passes it).

    Presets differ in training length only: more steps keep paying (whole kodim07 + kodim23,
    BD-rate vs AVIF s1: 1500 steps +22.0 %, 3000 steps +15.2 %). ``default`` is sized for
    the 120 s budget on a 2-core CPU and ``slow`` for 15 minutes (the step counts and their
    measured times: options.PRESET_STEPS).
    """
    syn_hidden, arm_hidden = widths(pixels, lmbda, start_bits)
    arch = ArchConfig(
        grids(channels, lmbda), arm_hidden, (syn_hidden,), channels, UP_TABLE, PREFILTER
    )
    steps = preset_steps(name, lmbda) if steps is None else steps
    return arch, TrainConfig(
        steps=steps, rate_stride=rate_stride(lmbda), level_step_ratio=level_step_ratio(lmbda)
    )
