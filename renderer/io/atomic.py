"""Atomic file output: a target path is replaced only by a complete file, never half-written; output
folders are checked (``check_output_dir``) before any work and created (``make_output_dir``) with
every operating-system refusal reported as a one-line ``FileFormatError`` naming the folder."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from renderer.errors import FileFormatError


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[BinaryIO]:
    """Binary file handle whose contents replace ``path`` only if the block completes.

    Data go to a hidden temporary file in the same folder (so ``os.replace`` is an atomic rename),
    are flushed to disk, and the temporary file is removed on any error. Shared by the .splat writer.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise FileFormatError(path, f"cannot write: folder {path.parent} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    except OSError as e:
        raise FileFormatError(path, f"cannot write: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; outputs are ordinary shareable files
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise FileFormatError(path, f"cannot write: {e.strerror or e}") from None
        raise


def replace_dir(tmp: Path, final: Path, trash: Path) -> None:
    """Move the complete folder ``tmp`` to ``final``, replacing an existing ``final``: the old one is
    first renamed to ``trash`` (same file system) and deleted only after the new one is in place, so
    at every moment a complete folder exists under one of the names."""
    if final.exists():
        os.replace(final, trash)
        os.replace(tmp, final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, final)


def check_output_dir(path: Path) -> None:
    """Raise ``FileFormatError`` naming ``path`` when it cannot become an output folder: it exists and is
    not a folder (a file, a broken symbolic link, a link loop), a folder above it is a file or a
    broken link, or the nearest existing folder may not be written (permissions, an immutable folder,
    a read-only file system). Nothing is created."""
    path = Path(path)
    if path.is_symlink() and not path.exists():
        raise FileFormatError(path, "cannot write: a broken symbolic link or a symbolic link loop")
    if path.exists():
        if not path.is_dir():
            raise FileFormatError(path, "output path exists and is not a folder")
        folder = path
    else:
        folder = path.parent
        while not folder.exists():
            if folder.is_symlink():
                raise FileFormatError(path, f"cannot write: {folder} is a broken symbolic link or a link loop")
            folder = folder.parent
        if not folder.is_dir():
            raise FileFormatError(path, f"cannot write: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise FileFormatError(path, f"cannot write: permission denied ({folder} is read-only)")


def make_output_dir(path: Path) -> Path:
    """``check_output_dir``, then create the folder (and its parents); an ``OSError`` on the way (the
    checks cannot foresee all: a full disk, a file system that refuses) is a ``FileFormatError``."""
    path = Path(path)
    check_output_dir(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FileFormatError(path, f"cannot create the output folder: {e.strerror or e}") from None
    return path
