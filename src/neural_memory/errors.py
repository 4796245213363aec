"""Exception types shared by every layer.

Every error a user can provoke with bad input derives from :class:`NeuralMemoryError`, so the
CLI can turn it into a one-line message and a non-zero exit code instead of a traceback.
"""

from __future__ import annotations


class NeuralMemoryError(Exception):
    """Base class of all errors caused by input, options or the environment."""


class FormatError(NeuralMemoryError):
    """A ``.nmem`` file (or a section inside it) is truncated, corrupted or unsupported."""


class ImageError(NeuralMemoryError):
    """An input image cannot be read, or has a mode/size this codec does not handle."""


class OptionError(NeuralMemoryError, ValueError):
    """An option value is out of range or options contradict each other."""


class OutputError(NeuralMemoryError):
    """An output cannot be written (exists without ``force``, directory missing, disk full)."""


class MissingDependencyError(NeuralMemoryError):
    """An optional dependency (e.g. PyTorch for lossy encoding) is not installed."""
