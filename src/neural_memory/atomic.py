"""Write outputs so that a failure never leaves a half-written file or destroys an input.

The bytes go to a temporary file in the destination's directory (same filesystem), are
flushed to disk, and only then renamed over the destination, which POSIX makes atomic.
"""

from __future__ import annotations

import errno
import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path

from neural_memory.errors import OutputError


def check_output_path(path: str | os.PathLike, *, force: bool, inputs: tuple = ()) -> Path:
    """Refuse an output that exists (unless ``force``) or that is one of the ``inputs``.

    >>> check_output_path("/nonexistent-dir/out.png", force=False)
    Traceback (most recent call last):
    ...
    neural_memory.errors.OutputError: output folder does not exist: /nonexistent-dir
    """
    out = Path(path)
    for src in inputs:
        try:
            if out.exists() and out.samefile(src):
                raise OutputError(f"refusing to overwrite the input file {src}")
        except OSError:
            pass
    if out.is_dir():
        raise OutputError(f"output path is a folder: {out}")
    if out.exists() and not force:
        raise OutputError(f"output file exists: {out} (use --force to overwrite it)")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"output folder does not exist: {parent}")
    check_writable(parent)
    return out


def check_writable(folder: str | os.PathLike) -> None:
    """Refuse a folder no file can be created in (read-only mount, no permission), before
    any long work: a real temporary file is made and removed, since permission bits alone
    say nothing for root or on a read-only mount."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise OutputError(
            f"cannot write in the output folder {folder}: {exc.strerror or exc}"
        ) from None


#: Temporary files being written now, so that a process stopped by a signal can remove them
#: (:func:`remove_partial_files`) before it exits.
_PARTIAL: set[Path] = set()


def remove_partial_files() -> None:
    """Delete the temporary files of writes in progress (for a signal handler that is about
    to end the process without unwinding)."""
    for tmp in list(_PARTIAL):
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    """The process umask (reading it means setting it; set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _create_temporary(parent: Path, out: Path) -> tuple[int, Path]:
    """A new private file ``.<stem>.<random><suffix>`` in ``parent``, open for writing, listed
    in _PARTIAL *before* it exists, so that a signal handler running at any point of its
    creation removes it. (With tempfile.mkstemp the file existed before it was listed: a
    SIGTERM in between left it behind, seen once in the batch Ctrl-C test.)"""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = parent / f".{out.stem}.{secrets.token_hex(6)}{out.suffix}"
        _PARTIAL.add(tmp)
        try:
            return os.open(tmp, flags, 0o600), tmp
        except FileExistsError:  # another writer's name (1 in 2**48): not ours to remove
            _PARTIAL.discard(tmp)
        except BaseException:
            _PARTIAL.discard(tmp)
            raise


def write_atomic(path: str | os.PathLike, writer: Callable[[Path], None] | bytes) -> None:
    """Create ``path`` atomically, from bytes or from ``writer(temp_path)``.

    ``writer`` lets image libraries that want a file name (Pillow picks the format from
    the extension, so the temporary name keeps it) write directly.
    """
    out = Path(path)
    parent = out.parent if str(out.parent) else Path(".")
    fd, tmp = _create_temporary(parent, out)
    try:
        if isinstance(writer, (bytes, bytearray, memoryview)):
            with os.fdopen(fd, "wb") as handle:
                handle.write(writer)
                handle.flush()
                os.fsync(handle.fileno())
        else:
            os.close(fd)
            writer(tmp)
        # the temporary file is created private (0600); give it the mode a plain open() would
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno == errno.ENOSPC:
            raise OutputError(f"disk full while writing {out}") from None
        raise OutputError(f"cannot write {out}: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        _PARTIAL.discard(tmp)
