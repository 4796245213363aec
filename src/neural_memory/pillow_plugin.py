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

Options shared with Pillow's WebP plugin mean what they mean there: ``quality`` (0-100) is
the lossy quality (``options.quality_to_lmbda``, the scale of ``neural-memory encode -q``)
and is ignored with ``lossless=True`` (where WebP reads it as effort); ``icc_profile=``,
``exif=`` (bytes or ``Image.Exif``) and ``xmp=`` are stored (default: the image's own
``info``; ``strip=True`` stores none). ``near_lossless=K`` is near-lossless with bound K, and
``near_lossless=0`` lossless (K = 0 allows no error), never lossy. ``bpp``, ``psnr`` and
``lmbda`` (or ``lambda``) set the rate directly; ``preset``, ``steps``, ``device``, ``seed`` and
``threads`` pass through. Other keywords Pillow hands every plugin are ignored. Opened files
have ``info["icc_profile"]``, ``info["exif"]`` and ``info["xmp"]`` when stored.
"""

from __future__ import annotations

from PIL import Image, ImageFile

from neural_memory.container import MAGIC, Metadata
from neural_memory.images import pillow_metadata
from neural_memory.options import LOSSLESS, NEAR_LOSSLESS, EncodeOptions

FORMAT = "NMEM"


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
        from neural_memory.api import read_metadata

        self.info.update(pillow_metadata(read_metadata(self._nmem_data)))
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

    >>> save_options({"quality": 75}).quality, save_options({"near_lossless": 2}).mode
    (75.0, 'near-lossless')
    >>> save_options({"lossless": True, "quality": 80}).mode
    'lossless'
    >>> save_options({"near_lossless": 0}).mode
    'lossless'
    """
    options = dict(params)
    keywords: dict = {}
    near = options.pop("near_lossless", None)
    if near is None:
        near = options.pop("near", None)
    lossless = bool(options.pop("lossless", False))
    if lossless or (near is not None and near == 0):
        keywords["mode"] = LOSSLESS
        options.pop("quality", None)  # WebP reads quality as effort when lossless
    elif near is not None:
        keywords.update(mode=NEAR_LOSSLESS, near=near)
    if "quality" in options:
        keywords["quality"] = options.pop("quality")
    if "lambda" in options:
        keywords["lmbda"] = options.pop("lambda")
    for key in ("bpp", "psnr", "lmbda", "preset", "steps", "device", "seed", "threads", "strip"):
        if key in options:
            keywords[key] = options.pop(key)
    return EncodeOptions(**keywords)


def save_metadata(im: Image.Image) -> Metadata:
    """The metadata ``img.save()`` stores: ``icc_profile=``, ``exif=`` and ``xmp=`` when
    given, else the image's own (``im.info``)."""
    from neural_memory.images import metadata_of

    own = metadata_of(im)
    given = im.encoderinfo
    exif = given.get("exif", own.exif)
    if isinstance(exif, Image.Exif):
        exif = exif.tobytes()
    return Metadata(icc=given.get("icc_profile", own.icc), exif=exif, xmp=given.get("xmp", own.xmp))


def _save(im: Image.Image, fp, filename) -> None:
    from neural_memory.api import encode
    from neural_memory.images import to_array

    options = save_options(im.encoderinfo)
    fp.write(encode(to_array(im), options, metadata=save_metadata(im)))


def register() -> None:
    """Make Pillow open and save ``.nmem`` files (idempotent)."""
    Image.register_open(FORMAT, NmemImageFile, _accept)
    Image.register_save(FORMAT, _save)
    Image.register_extension(FORMAT, ".nmem")
    Image.register_mime(FORMAT, "image/x-neural-memory")
