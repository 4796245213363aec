"""``neural-memory inpaint IMAGE --mask MASK -o OUT``: the command-line side of inpainting.

The main CLI (neural_memory/cli.py) owns the parser; it calls :func:`add_inpaint_arguments`
on its ``inpaint`` sub-parser and :func:`run_inpaint` to run it. Errors are raised as
:class:`~neural_memory.errors.NeuralMemoryError` subclasses, which the main CLI prints as one
line with a non-zero exit code.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from neural_memory.reconstruct.inpainting import KINDS, InpaintConfig


def add_inpaint_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``neural-memory inpaint``."""
    defaults = InpaintConfig()
    parser.add_argument("image", type=Path, help="image with missing pixels")
    parser.add_argument(
        "--mask", type=Path, required=True, help="same-size image; nonzero pixels are unknown"
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="filled image")
    parser.add_argument("-f", "--force", action="store_true", help="overwrite an existing output")
    parser.add_argument(
        "--kind",
        choices=KINDS,
        default=defaults.kind,
        help="shape of the holes, for the synthetic holes the network trains on (auto: guess)",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=defaults.steps,
        help=f"training steps of the refinement network; 0 = smooth fill only "
        f"(default {defaults.steps})",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="training seed")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch")


def _require_extras() -> None:
    """Fail with the install hint, not a traceback, when the [reconstruct] extra is missing."""
    import importlib.util

    from neural_memory.errors import MissingDependencyError

    missing = [m for m in ("torch", "cv2", "scipy") if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingDependencyError(
            f"inpainting needs {', '.join(missing)}: pip install 'neural-memory[reconstruct]'"
        )


def run_inpaint(args: argparse.Namespace) -> int:
    """Load, validate, fill and save; returns the exit code (0)."""
    from neural_memory.atomic import check_output_path
    from neural_memory.images import load_image, save_image
    from neural_memory.reconstruct.inpainting import inpaint
    from neural_memory.reconstruct.masks import as_mask

    _require_extras()
    output = check_output_path(args.output, force=args.force, inputs=(args.image, args.mask))
    pixels = load_image(args.image)
    mask = as_mask(load_image(args.mask), pixels.shape[0], pixels.shape[1])
    start = time.perf_counter()
    filled = inpaint(
        pixels, mask, kind=args.kind, steps=args.steps, seed=args.seed, threads=args.threads
    )
    save_image(output, filled)
    print(
        f"{output}: filled {int(mask.sum()):,} of {mask.size:,} pixels "
        f"({100 * mask.mean():.1f}%) in {time.perf_counter() - start:.1f} s"
    )
    return 0
