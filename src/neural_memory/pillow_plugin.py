"""Pillow plugin: ``Image.open("x.nmem")`` decodes and ``img.save("x.nmem", ...)`` encodes.

Pillow knows the format once :func:`register` has run (``import neural_memory`` alone does not
change Pillow's global registry). Save options are the API's:

>>> import io, numpy as np
>>> from PIL import Image
>>> register()
>>> buffer = io.BytesIO()
>>> Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(buffer, format="NMEM", lossless=True)
>>> Image.open(io.BytesIO(buffer.getvalue())).size
(4, 4)

``quality`` (0-100, as for JPEG and WebP) maps to a target PSNR of 26 + 0.14 * quality dB
(quality 75 -> 36.5 dB); ``bpp``, ``psnr`` and ``lmbda`` (or ``lambda``) set the rate
directly; ``lossless=True`` and ``near_lossless=K`` choose the other modes; ``preset``,
``steps``, ``device``, ``seed`` and ``threads`` pass through. Other keywords Pillow hands
every plugin are ignored.
"""

from __future__ import annotations

from PIL import Image, ImageFile

from neural_memory.container import MAGIC
from neural_memory.errors import OptionError
from neural_memory.options import LOSSLESS, NEAR_LOSSLESS, EncodeOptions

FORMAT = "NMEM"


def quality_to_psnr(quality: float) -> float:
    """The target PSNR a Pillow-style ``quality`` stands for.

    >>> quality_to_psnr(75)
    36.5
    """
    if not 0 <= quality <= 100:
        raise OptionError(f"quality must be between 0 and 100, got {quality}")
    return 26.0 + 0.14 * quality


def _accept(prefix: bytes) -> bool:
    return prefix[: len(MAGIC)] == MAGIC


class NmemImageFile(ImageFile.ImageFile):
    """A ``.nmem`` file opened through Pillow; pixels are decoded on first access."""

    format = FORMAT
    format_description = "neural-memory image"

    def _open(self) -> None:
        from neural_memory.api import read_info

        self._nmem_data = self.fp.read()
        info = read_info(self._nmem_data)
        if info.bit_depth == 16 and info.channels != 1:
            raise SyntaxError("16-bit colour has no Pillow mode; use neural_memory.decode")
        modes = {1: "L", 3: "RGB", 4: "RGBA"}
        self._mode = "I;16" if info.bit_depth == 16 else modes[info.channels]
        self._size = (info.width, info.height)
        self.info["nmem_mode"] = info.mode
        if info.mode == "near-lossless":
            self.info["near_lossless"] = info.near
        self.tile = []

    def load(self):
        if self._nmem_data is not None:
            from neural_memory.api import decode
            from neural_memory.images import to_pil

            decoded = to_pil(decode(self._nmem_data))
            self.im = decoded.im
            self._nmem_data = None
        return Image.Image.load(self)


def save_options(params: dict) -> EncodeOptions:
    """The :class:`EncodeOptions` of ``img.save(..., **params)``.

    >>> save_options({"quality": 75}).psnr, save_options({"near_lossless": 2}).mode
    (36.5, 'near-lossless')
    """
    options = dict(params)
    keywords: dict = {}
    near = options.pop("near_lossless", None) or options.pop("near", None)
    if options.pop("lossless", False):
        keywords["mode"] = LOSSLESS
    elif near:
        keywords.update(mode=NEAR_LOSSLESS, near=int(near))
    if "quality" in options:
        keywords["psnr"] = quality_to_psnr(float(options.pop("quality")))
    if "lambda" in options:
        keywords["lmbda"] = options.pop("lambda")
    for key in ("bpp", "psnr", "lmbda", "preset", "steps", "device", "seed", "threads"):
        if key in options:
            keywords[key] = options.pop(key)
    return EncodeOptions(**keywords)


def _save(im: Image.Image, fp, filename) -> None:
    from neural_memory.api import encode
    from neural_memory.images import to_array

    fp.write(encode(to_array(im), save_options(im.encoderinfo)))


def register() -> None:
    """Make Pillow open and save ``.nmem`` files (idempotent)."""
    Image.register_open(FORMAT, NmemImageFile, _accept)
    Image.register_save(FORMAT, _save)
    Image.register_extension(FORMAT, ".nmem")
    Image.register_mime(FORMAT, "image/x-neural-memory")
