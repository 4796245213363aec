"""The ``.nmem`` container: one file format for every mode (see docs/FORMAT.md)."""

from neural_memory.container.nmem import (
    FORMAT_VERSION,
    MAGIC,
    MAX_PIXELS,
    MAX_SIDE,
    METADATA_TAGS,
    Container,
    Header,
    Metadata,
    Mode,
    pack,
    unpack,
)

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "MAX_PIXELS",
    "MAX_SIDE",
    "METADATA_TAGS",
    "Container",
    "Header",
    "Metadata",
    "Mode",
    "pack",
    "unpack",
]
