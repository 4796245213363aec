"""16-bit colour PNG, read and written without a third-party codec library.

Why here: Pillow has no 16-bit colour mode and silently truncates such PNGs to 8 bits, and
imagecodecs, which reads them, is 80 MB, more than half the base install. PNG is small enough
to own: chunks and CRCs are checked here, zlib (standard library) inflates, and the per-byte
row filters are undone in C (``neural_memory._png``). Gray 16-bit PNG stays with Pillow
(mode ``I;16``, exact).

Reading handles every 16-bit PNG with colour: RGB, RGBA and gray + alpha (returned as RGBA,
like 8-bit gray + alpha), interlaced (Adam7) or not. Writing picks each row's filter by the
usual minimum-sum-of-absolute-differences rule and keeps the ICC profile, EXIF and XMP.

>>> import numpy as np
>>> image = np.arange(2 * 3 * 3, dtype=np.uint16).reshape(2, 3, 3) * 3000
>>> bool((read_png16(png16_bytes(image)) == image).all())
True
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from neural_memory.container import Metadata
from neural_memory.errors import ImageError
from neural_memory.options import MAX_PIXELS
from neural_memory.options import check_size as within_limits

SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: the iTXt keyword of XMP packets in PNG (what Pillow and libpng read)
XMP_KEY = "XML:com.adobe.xmp"
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type -> samples per pixel
_CRITICAL = (b"IHDR", b"PLTE", b"IDAT", b"IEND")
# Adam7: (first column, first row, column step, row step) of each of the 7 passes
_ADAM7 = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)
_IDAT_SIZE = 1 << 18  # bytes per IDAT chunk written (decoders stream them; size is free)
# bytes of rows filtered at once: the five candidate filterings and their costs take about
# 20 times this, whatever the width
_FILTER_BLOCK_BYTES = 1 << 20


def check_size(width: int, height: int) -> None:
    """Reject empty or absurdly large images before anything big is allocated (the one
    owner of this message: images.py reads it from here)."""
    if width < 1 or height < 1:
        raise ImageError(f"image is empty ({width}x{height})")
    if not within_limits(width, height):
        raise ImageError(f"image is too large ({width}x{height}); the limit is {MAX_PIXELS} pixels")


def header(data: bytes) -> tuple[int, int, int, int, int] | None:
    """``(width, height, bit depth, colour type, interlace)`` of a PNG's IHDR, or None when
    ``data`` does not start like a PNG; a PNG whose first chunk is not IHDR is damaged."""
    if data[:8] != SIGNATURE:
        return None
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise ImageError("damaged PNG: it does not start with an IHDR chunk")
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    return width, height, depth, colour, interlace


def is_16bit_colour(data: bytes) -> bool:
    """Whether ``data`` is a PNG whose samples Pillow would truncate (16-bit with colour or
    alpha); gray 16-bit Pillow reads exactly."""
    head = header(data)
    return head is not None and head[2] == 16 and head[3] in (2, 4, 6)


def read_png16(data: bytes) -> np.ndarray:
    """Decode a 16-bit PNG into an ``(H, W, C)`` uint16 array (C = 1, 3 or 4; gray + alpha
    becomes RGBA). Damaged or truncated files raise :class:`ImageError` naming the problem.
    The dimensions are checked against the package's limits (``options.check_size``) before
    anything is allocated, and memory stays bounded by them: inflating stops at the size the
    header implies."""
    chunks = _chunks(data)
    ihdr = chunks[0][1]
    if chunks[0][0] != b"IHDR" or len(ihdr) != 13:
        raise ImageError("damaged PNG: it does not start with an IHDR chunk")
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(
        ">IIBBBBB", ihdr
    )
    if depth != 16 or colour not in _CHANNELS:
        raise ImageError(f"not a 16-bit PNG (bit depth {depth}, colour type {colour})")
    if width < 1 or height < 1 or compression or filtering or interlace > 1:
        raise ImageError("damaged PNG: invalid IHDR (size, compression, filter or interlace)")
    check_size(width, height)
    channels = _CHANNELS[colour]
    passes = _ADAM7 if interlace else ((0, 0, 1, 1),)
    shapes = [_pass_shape(width, height, p) for p in passes]
    expected = sum(h * (1 + w * 2 * channels) for w, h in shapes if w and h)
    raw = memoryview(_inflate(b"".join(body for kind, body in chunks if kind == b"IDAT"), expected))
    from neural_memory import _png

    image = np.empty((height, width, channels), dtype=np.uint16)
    offset = 0
    for (x0, y0, dx, dy), (w, h) in zip(passes, shapes, strict=True):
        if not (w and h):
            continue
        size = h * (1 + w * 2 * channels)
        try:
            rows = _png.unfilter(raw[offset : offset + size], h, w * 2 * channels, 2 * channels)
        except ValueError as exc:
            raise ImageError(f"damaged PNG: {exc}") from None
        image[y0::dy, x0::dx] = np.frombuffer(rows, dtype=">u2").reshape(h, w, channels)
        offset += size
    if channels == 2:  # gray + alpha -> RGBA, as for 8-bit
        image = image[:, :, [0, 0, 0, 1]]
    return np.ascontiguousarray(image)


def png16_bytes(array: np.ndarray, metadata: Metadata | None = None, *, level: int = 6) -> bytes:
    """Encode an ``(H, W, C)`` uint16 array (C = 1, 3 or 4) as a 16-bit PNG with ``metadata``
    (ICC profile in iCCP, EXIF in eXIf, XMP in an iTXt chunk, as Pillow and libpng read them).
    ``level`` is zlib's (0-9)."""
    if array.dtype != np.uint16 or array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ValueError("png16_bytes takes an (H, W, C) uint16 array with C = 1, 3 or 4")
    height, width, channels = array.shape
    colour = {1: 0, 3: 2, 4: 6}[channels]
    out = [SIGNATURE, _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, colour, 0, 0, 0))]
    metadata = metadata or Metadata()
    if metadata.icc:
        out.append(_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(metadata.icc)))
    if metadata.exif:
        out.append(_chunk(b"eXIf", metadata.exif))
    if metadata.xmp:
        out.append(_chunk(b"iTXt", XMP_KEY.encode() + b"\x00\x00\x00\x00\x00" + metadata.xmp))
    raw = np.ascontiguousarray(array.astype(">u2")).view(np.uint8).reshape(height, -1)
    compressor = zlib.compressobj(level)
    stream = []
    previous = np.zeros(raw.shape[1], dtype=np.uint8)
    block_rows = max(1, _FILTER_BLOCK_BYTES // raw.shape[1])
    for start in range(0, height, block_rows):
        block = raw[start : start + block_rows]
        stream.append(compressor.compress(_filter_rows(block, previous, 2 * channels).tobytes()))
        previous = block[-1]
    stream.append(compressor.flush())
    data = b"".join(stream)
    for start in range(0, max(len(data), 1), _IDAT_SIZE):
        out.append(_chunk(b"IDAT", data[start : start + _IDAT_SIZE]))
    out.append(_chunk(b"IEND", b""))
    return b"".join(out)


def _filter_rows(rows: np.ndarray, previous: np.ndarray, bpp: int) -> np.ndarray:
    """Filter ``rows`` (uint8, the row above the first is ``previous``): each row gets the
    filter (None, Sub, Up, Average, Paeth) whose output has the smallest sum of absolute values
    as signed bytes, libpng's heuristic. Returns rows of (filter byte + filtered bytes)."""
    x = rows.astype(np.int16)
    up = np.vstack([previous[None].astype(np.int16), x[:-1]])
    left = np.zeros_like(x)
    left[:, bpp:] = x[:, :-bpp]
    up_left = np.zeros_like(x)
    up_left[:, bpp:] = up[:, :-bpp]
    p = left + up - up_left
    pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - up_left)
    paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, up_left))
    candidates = np.stack([x, x - left, x - up, x - ((left + up) >> 1), x - paeth]) & 0xFF
    cost = np.abs(candidates.astype(np.uint8).view(np.int8).astype(np.int32)).sum(axis=2)
    best = cost.argmin(axis=0)
    chosen = candidates[best, np.arange(len(rows))].astype(np.uint8)
    return np.hstack([best.astype(np.uint8)[:, None], chosen])


def _pass_shape(
    width: int, height: int, interlace_pass: tuple[int, int, int, int]
) -> tuple[int, int]:
    x0, y0, dx, dy = interlace_pass
    return max(0, -(-(width - x0) // dx)), max(0, -(-(height - y0) // dy))


def _chunks(data: bytes) -> list[tuple[bytes, memoryview]]:
    """The chunks up to IEND, as memoryviews of ``data`` (no copies). The critical ones'
    CRCs are checked (a damaged ancillary chunk is skipped, as libpng does by default); one
    IHDR, first; IDAT chunks consecutive; an unknown critical chunk refused, as the PNG
    specification asks of a decoder."""
    if data[:8] != SIGNATURE:
        raise ImageError("not a PNG file")
    view = memoryview(data)
    chunks: list[tuple[bytes, memoryview]] = []
    pos, idat_done = 8, False
    while True:
        if pos + 12 > len(data):
            raise ImageError("truncated PNG: the file ends before its IEND chunk")
        length, kind = struct.unpack(">I4s", view[pos : pos + 8])
        end = pos + 12 + length
        if length > 0x7FFFFFFF or end > len(data):
            raise ImageError(f"truncated PNG: its {kind!r} chunk runs past the end of the file")
        body = view[pos + 8 : end - 4]
        name = kind.decode("latin-1")
        if not kind.isalpha():
            raise ImageError(f"damaged PNG: {name!r} is not a chunk type")
        critical = kind[:1].isupper()
        crc_ok = zlib.crc32(body, zlib.crc32(kind)) == struct.unpack(">I", view[end - 4 : end])[0]
        if critical and not crc_ok:
            raise ImageError(f"damaged PNG: bad checksum in its {name} chunk")
        if critical and kind not in _CRITICAL:
            raise ImageError(f"unsupported PNG: unknown critical chunk {name!r}")
        if (kind == b"IHDR") != (not chunks):
            raise ImageError("damaged PNG: IHDR must be its first chunk, and only once")
        if kind == b"IDAT" and idat_done:
            raise ImageError("damaged PNG: its IDAT chunks are not consecutive")
        if chunks and chunks[-1][0] == b"IDAT" and kind != b"IDAT":
            idat_done = True
        if crc_ok:
            chunks.append((kind, body))
        pos = end
        if kind == b"IEND":
            return chunks


def _inflate(stream: bytes, expected: int) -> bytes:
    """Inflate at most ``expected`` bytes (a file claiming more cannot make us allocate more);
    the zlib stream must be complete (its checksum read), as libpng requires."""
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(stream, expected)
        if len(raw) == expected and not inflater.eof:
            # more image data than the header needs is tolerated (libpng warns); a stream
            # that stops before its end (no Adler-32) is truncated
            more = inflater.decompress(inflater.unconsumed_tail, 1)
            if not more and not inflater.eof:
                raise ImageError("truncated PNG: its image data stream has no end")
    except zlib.error as exc:
        raise ImageError(f"damaged PNG: its image data does not inflate ({exc})") from None
    if len(raw) < expected:
        raise ImageError(
            f"truncated PNG: {len(raw)} bytes of image data, the header needs {expected}"
        )
    return raw


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
