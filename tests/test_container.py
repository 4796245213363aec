"""The .nmem container: round trips, and strict, bounded parsing of damaged files."""

from __future__ import annotations

import zlib
from dataclasses import replace

import pytest

from neural_memory.container import Header, Metadata, Mode, pack, unpack
from neural_memory.container.nmem import MAX_SECTIONS
from neural_memory.container.varint import read_varint, write_varint
from neural_memory.errors import FormatError

HEADER = Header(Mode.NEAR_LOSSLESS, 640, 480, 3, 8, param=2)
SECTIONS = {"DATA": b"\x01\x02\x03" * 50, "ICCP": b"", "EXIF": bytes(range(200))}


def test_round_trip_keeps_header_and_sections() -> None:
    container = unpack(pack(HEADER, SECTIONS))
    assert container.header == replace(HEADER, version=2)
    assert container.sections == SECTIONS
    assert list(container.sections) == list(SECTIONS)
    assert container.metadata == Metadata(exif=bytes(range(200)))


def test_version_1_without_metadata_version_2_with() -> None:
    plain = pack(HEADER, {"DATA": b"x"})
    assert plain[4] == 1 and unpack(plain).header.version == 1
    tagged = pack(HEADER, {"DATA": b"x", "XMP_": b"<x/>"})
    assert tagged[4] == 2 and unpack(tagged).metadata.xmp == b"<x/>"


def _raw(header_bytes: bytes, sections: list[tuple[bytes, bytes]]) -> bytes:
    """A file with any section list (what pack refuses to write), checksum included."""
    body = bytearray(header_bytes) + bytes([len(sections)])
    for tag, payload in sections:
        body += tag + bytes([len(payload)]) + payload
    return bytes(body) + zlib.crc32(body).to_bytes(4, "little")


@pytest.mark.parametrize(
    "version, sections, message",
    [
        (2, [(b"DATA", b"x"), (b"XTRA", b"")], "unknown section 'XTRA'"),
        (2, [(b"DATA", b"x"), (b"EXIF", b"a"), (b"ICCP", b"b")], "out of order"),
        (2, [(b"DATA", b"x"), (b"EXIF", b"a"), (b"EXIF", b"b")], "appears twice"),
        (2, [(b"ICCP", b"a"), (b"DATA", b"x")], "expected the sections DATA first"),
        (2, [(b"LOSY", b"x")], "expected the sections DATA first"),
        (2, [], "found none"),
        (1, [(b"DATA", b"x"), (b"ICCP", b"a")], "in a version 1 file"),
    ],
)
def test_sections_forbidden_by_the_format_are_rejected(version, sections, message) -> None:
    # FORMAT.md: a decoder ignores nothing (the old parser accepted all of these but the twice)
    head = b"NMEM" + bytes([version, 1, 4, 4, 3, 8, 0])
    assert unpack(_raw(head, [(b"DATA", b"x")])).header.width == 4
    with pytest.raises(FormatError, match=message):
        unpack(_raw(head, sections))
    as_dict = {t.decode(): p for t, p in sections}
    if len(as_dict) == len(sections) and version == 2:  # pack writes the version it needs
        with pytest.raises(ValueError):
            pack(Header(Mode.LOSSLESS, 4, 4, 3), as_dict)


def test_overhead_is_small() -> None:
    data = pack(Header(Mode.LOSSY, 768, 512, 3), {"LOSY": b"x" * 1000})
    assert len(data) - 1000 <= 24


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2**20, 2**35 - 1])
def test_varint_round_trip(value: int) -> None:
    encoded = write_varint(value)
    assert read_varint(encoded, 0, "x") == (value, len(encoded))


def test_overlong_varint_is_rejected() -> None:
    with pytest.raises(FormatError, match="not a valid number"):
        read_varint(b"\xff" * 6, 0, "width")


def test_every_truncation_is_a_format_error() -> None:
    data = pack(HEADER, SECTIONS)
    for cut in range(len(data)):
        with pytest.raises(FormatError):
            unpack(data[:cut])


def test_every_single_byte_corruption_is_detected() -> None:
    data = pack(HEADER, SECTIONS)
    for pos in range(len(data)):
        damaged = bytearray(data)
        damaged[pos] ^= 0x5A
        with pytest.raises(FormatError):
            unpack(bytes(damaged))


def test_wrong_magic_and_version_have_clear_messages() -> None:
    data = pack(HEADER, SECTIONS)
    with pytest.raises(FormatError, match="magic"):
        unpack(b"\x89PNG" + data[4:])
    with pytest.raises(FormatError, match=r"version 9 .*versions 1 to 2"):
        unpack(data[:4] + b"\x09" + data[5:])


def test_huge_declared_length_does_not_allocate() -> None:
    # A section claiming 2**34 bytes in a tiny file must fail fast on the length check.
    data = bytearray(pack(Header(Mode.LOSSLESS, 4, 4, 1), {"DATA": b""}))
    tag = data.index(b"DATA")
    hostile = bytes(data[: tag + 4]) + write_varint(2**34) + bytes(data[tag + 5 :])
    with pytest.raises(FormatError, match="truncated"):
        unpack(hostile)


def test_absurd_dimensions_are_rejected() -> None:
    with pytest.raises(FormatError, match="out of range"):
        pack(Header(Mode.LOSSY, 0, 10, 3), {})
    with pytest.raises(FormatError, match="too large"):
        Header(Mode.LOSSY, 65536, 65536, 3).validate()


def test_section_count_is_bounded() -> None:
    with pytest.raises(ValueError):
        pack(HEADER, {f"S{i:03d}": b"" for i in range(MAX_SECTIONS + 1)})
