"""Unsigned LEB128 varints: small numbers cost one byte, which matters at 0.1 bpp."""

from __future__ import annotations

from neural_memory.errors import FormatError

MAX_VARINT_BYTES = 5  # enough for 2**35 - 1; anything longer is a corrupted file


def write_varint(value: int) -> bytes:
    """Encode a non-negative integer.

    >>> write_varint(300).hex()
    'ac02'
    """
    if value < 0:
        raise ValueError("varints are unsigned")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_varint(data: bytes | memoryview, pos: int, what: str) -> tuple[int, int]:
    """Decode a varint at ``pos``; return ``(value, next_pos)``.

    Raises :class:`FormatError` naming ``what`` if the data ends or the varint is too long.

    >>> read_varint(bytes.fromhex('ac02'), 0, 'demo')
    (300, 2)
    """
    value = 0
    for i in range(MAX_VARINT_BYTES):
        if pos + i >= len(data):
            raise FormatError(f"file is truncated (inside the {what})")
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, pos + i + 1
    raise FormatError(f"corrupted file: the {what} is not a valid number")
