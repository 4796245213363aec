"""Reading and writing ``.nmem`` files.

Layout (all integers little endian or LEB128 varints, see docs/FORMAT.md)::

    magic "NMEM" | version u8 | mode u8 | width v | height v | channels u8 | bit_depth u8
    | param v | section_count v | { tag 4 ASCII | length v | payload }* | crc32 u32

The version is 1, or 2 for a file with metadata sections (ICC profile, EXIF, XMP).

The parser is strict and bounded: every length is checked against the bytes that are
actually there before anything is sliced or allocated, so a hostile file can make it raise
:class:`~neural_memory.errors.FormatError` but never allocate much or loop for long.
"""

from __future__ import annotations

import enum
import struct
import zlib
from dataclasses import dataclass, field

from neural_memory.container.varint import read_varint, write_varint
from neural_memory.errors import FormatError
from neural_memory.options import MAX_PIXELS, MAX_SIDE, max_near

MAGIC = b"NMEM"
#: The newest format version this build reads and writes. A file is written with the lowest
#: version that holds its sections: 1 without metadata, 2 with (so files without metadata
#: still open in version-1 decoders, and a version-1 decoder refuses metadata it would drop).
FORMAT_VERSION = 2
READ_VERSIONS = (1, 2)
MAX_SECTIONS = 64

#: Optional metadata sections (format version 2), after the engine's sections, in this order:
#: the ICC colour profile, EXIF (the TIFF structure, without JPEG's "Exif\0\0" prefix) and
#: XMP (the XML packet, UTF-8), each stored as found in the input, never interpreted.
ICC_TAG, EXIF_TAG, XMP_TAG = "ICCP", "EXIF", "XMP_"
METADATA_TAGS = (ICC_TAG, EXIF_TAG, XMP_TAG)
METADATA_VERSION = 2
_CRC = struct.Struct("<I")


class Mode(enum.IntEnum):
    """Which engine produced the payload."""

    LOSSY = 0
    LOSSLESS = 1
    NEAR_LOSSLESS = 2


@dataclass(frozen=True)
class Header:
    """What a decoder needs to know before it reads any section.

    ``param`` is the mode's single integer parameter: the error bound ``k`` for
    near-lossless (1 .. ``options.max_near(bit_depth)``), 0 otherwise.
    """

    mode: Mode
    width: int
    height: int
    channels: int
    bit_depth: int = 8
    param: int = 0
    #: the version of the file it was read from; :func:`pack` ignores it and writes the
    #: lowest version that holds the sections (:func:`version_for`)
    version: int = 1

    def validate(self) -> None:
        """Raise FormatError if the header describes an image this format cannot hold."""
        if not (1 <= self.width <= MAX_SIDE and 1 <= self.height <= MAX_SIDE):
            raise FormatError(f"image size {self.width}x{self.height} is out of range")
        if self.width * self.height > MAX_PIXELS:
            raise FormatError(f"image size {self.width}x{self.height} is too large")
        if self.channels not in (1, 3, 4):
            raise FormatError(f"unsupported channel count {self.channels}")
        if self.bit_depth not in (8, 16):
            raise FormatError(f"unsupported bit depth {self.bit_depth}")
        if self.mode == Mode.NEAR_LOSSLESS and self.param < 1:
            raise FormatError("near-lossless file without an error bound")
        if self.mode == Mode.NEAR_LOSSLESS and self.param > max_near(self.bit_depth):
            raise FormatError(f"near-lossless error bound {self.param} is out of range")


@dataclass(frozen=True)
class Container:
    """A parsed file: the header and its sections in file order."""

    header: Header
    sections: dict[str, bytes] = field(default_factory=dict)

    @property
    def metadata(self) -> Metadata:
        return Metadata.from_sections(self.sections)

    def section(self, tag: str) -> bytes:
        """Return a section's payload or raise FormatError naming the missing tag."""
        try:
            return self.sections[tag]
        except KeyError:
            raise FormatError(f"corrupted file: section {tag!r} is missing") from None


@dataclass(frozen=True)
class Metadata:
    """What an image file says about its pixels, kept beside them (format version 2): the
    ICC colour profile, EXIF (TIFF structure, orientation included: the pixels are stored as
    they are in the file, unrotated, as cjxl does) and XMP. Empty byte strings count as
    absent."""

    icc: bytes | None = None
    exif: bytes | None = None
    xmp: bytes | None = None

    def __post_init__(self) -> None:
        for name in ("icc", "exif", "xmp"):
            value = getattr(self, name)
            object.__setattr__(self, name, bytes(value) if value else None)
        if self.exif is not None and self.exif.startswith(b"Exif\x00\x00"):
            object.__setattr__(self, "exif", self.exif[6:] or None)

    def __bool__(self) -> bool:
        return any((self.icc, self.exif, self.xmp))

    def sections(self) -> dict[str, bytes]:
        """The metadata sections of a file, in file order."""
        values = (self.icc, self.exif, self.xmp)
        return {tag: value for tag, value in zip(METADATA_TAGS, values, strict=True) if value}

    @classmethod
    def from_sections(cls, sections: dict[str, bytes]) -> Metadata:
        return cls(*(sections.get(tag) for tag in METADATA_TAGS))


def engine_sections(mode: Mode, channels: int) -> tuple[str, ...]:
    """The sections a mode's engine writes, in file order (docs/FORMAT.md)."""
    if mode == Mode.LOSSY:
        return ("LOSY", "ALPH") if channels == 4 else ("LOSY",)
    return ("DATA",)


def version_for(tags) -> int:
    """The lowest format version that holds these sections."""
    return METADATA_VERSION if any(tag in METADATA_TAGS for tag in tags) else 1


def check_sections(header: Header, tags: list[str], version: int) -> None:
    """The section rules of docs/FORMAT.md: exactly the engine's sections, in order, then
    metadata sections (version 2 on) in the order of :data:`METADATA_TAGS`, each at most
    once; nothing unknown."""
    expected = engine_sections(header.mode, header.channels)
    found = tuple(tags[: len(expected)])
    if found != expected:
        raise FormatError(
            f"corrupted file: expected the sections {', '.join(expected)} first, "
            f"found {', '.join(tags[: len(expected)]) or 'none'}"
        )
    last = -1
    for tag in tags[len(expected) :]:
        if tag not in METADATA_TAGS:
            raise FormatError(f"corrupted file: unknown section {tag!r}")
        if version < METADATA_VERSION:
            raise FormatError(f"corrupted file: section {tag!r} in a version {version} file")
        index = METADATA_TAGS.index(tag)
        if index <= last:
            raise FormatError(f"corrupted file: section {tag!r} is out of order")
        last = index


def pack(header: Header, sections: dict[str, bytes]) -> bytes:
    """Serialise a header and its sections (in dict order) into a complete file, with the
    lowest format version that holds them.

    >>> data = pack(Header(Mode.LOSSLESS, 2, 1, 3), {"DATA": b"xy"})
    >>> unpack(data).sections["DATA"]
    b'xy'
    """
    header.validate()
    if len(sections) > MAX_SECTIONS:
        raise ValueError("too many sections")
    version = version_for(sections)
    try:
        check_sections(header, list(sections), version)
    except FormatError as exc:
        raise ValueError(str(exc).removeprefix("corrupted file: ")) from None
    out = bytearray(MAGIC)
    out += bytes([version, int(header.mode)])
    out += write_varint(header.width) + write_varint(header.height)
    out += bytes([header.channels, header.bit_depth])
    out += write_varint(header.param)
    out += write_varint(len(sections))
    for tag, payload in sections.items():
        raw_tag = tag.encode("ascii")
        if len(raw_tag) != 4:
            raise ValueError(f"section tags have 4 ASCII characters, got {tag!r}")
        out += raw_tag + write_varint(len(payload)) + payload
    out += _CRC.pack(zlib.crc32(out))
    return bytes(out)


def unpack(data: bytes) -> Container:
    """Parse and check a complete file; raise FormatError on anything unexpected."""
    data = bytes(data)
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        raise FormatError("not a neural-memory (.nmem) file: wrong magic bytes")
    if len(data) < len(MAGIC) + 2 + _CRC.size:
        raise FormatError("file is truncated (header incomplete)")
    version = data[4]
    if version not in READ_VERSIONS:
        raise FormatError(
            f"unsupported format version {version} (this build reads versions "
            f"{READ_VERSIONS[0]} to {READ_VERSIONS[-1]})"
        )
    body, stored_crc = data[: -_CRC.size], _CRC.unpack(data[-_CRC.size :])[0]
    try:
        mode = Mode(body[5])
    except ValueError:
        raise FormatError(f"corrupted file: unknown mode {body[5]}") from None
    pos = 6
    width, pos = read_varint(body, pos, "width")
    height, pos = read_varint(body, pos, "height")
    if pos + 2 > len(body):
        raise FormatError("file is truncated (header incomplete)")
    channels, bit_depth = body[pos], body[pos + 1]
    pos += 2
    param, pos = read_varint(body, pos, "mode parameter")
    count, pos = read_varint(body, pos, "section count")
    if count > MAX_SECTIONS:
        raise FormatError(f"corrupted file: {count} sections")
    sections: dict[str, bytes] = {}
    for _ in range(count):
        if pos + 4 > len(body):
            raise FormatError("file is truncated (section table incomplete)")
        raw_tag = body[pos : pos + 4]
        pos += 4
        if not all(0x20 < b < 0x7F for b in raw_tag):
            raise FormatError("corrupted file: invalid section tag")
        tag = raw_tag.decode("ascii")
        length, pos = read_varint(body, pos, f"length of section {tag!r}")
        if pos + length > len(body):
            raise FormatError(f"file is truncated (section {tag!r} is incomplete)")
        if tag in sections:
            raise FormatError(f"corrupted file: section {tag!r} appears twice")
        sections[tag] = body[pos : pos + length]
        pos += length
    if pos != len(body):
        raise FormatError("corrupted file: unexpected bytes after the last section")
    if zlib.crc32(body) != stored_crc:
        raise FormatError("corrupted file: checksum mismatch")
    header = Header(mode, width, height, channels, bit_depth, param, version)
    header.validate()
    check_sections(header, list(sections), version)
    return Container(header, sections)
