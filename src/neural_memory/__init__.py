"""neural-memory: an image codec that stores an image as a small neural network.

Importing the package changes no global state: Pillow learns the ``.nmem`` format only from
an explicit :func:`register` (``neural_memory.pillow_plugin.register``).

>>> import numpy as np, neural_memory
>>> data = neural_memory.encode(np.zeros((8, 8, 3), np.uint8), mode="lossless")
>>> neural_memory.decode(data).shape
(8, 8, 3)
"""

from neural_memory.api import (
    EncodeReport,
    FileInfo,
    decode,
    decode_file,
    encode,
    encode_file,
    read_info,
    read_metadata,
)
from neural_memory.container import FORMAT_VERSION, Metadata
from neural_memory.errors import (
    FormatError,
    ImageError,
    MissingDependencyError,
    NeuralMemoryError,
    OptionError,
    OutputError,
)
from neural_memory.images import load_image, save_image
from neural_memory.options import DecodeOptions, EncodeOptions
from neural_memory.pillow_plugin import register

__version__ = "0.1.0"

__all__ = [
    "FORMAT_VERSION",
    "DecodeOptions",
    "EncodeOptions",
    "EncodeReport",
    "FileInfo",
    "FormatError",
    "ImageError",
    "Metadata",
    "MissingDependencyError",
    "NeuralMemoryError",
    "OptionError",
    "OutputError",
    "__version__",
    "decode",
    "decode_file",
    "encode",
    "encode_file",
    "load_image",
    "read_info",
    "read_metadata",
    "register",
    "save_image",
]
