"""Gaussian file IO: INRIA 3DGS ``.ply`` (full SH) and antimatter15 ``.splat`` (DC colour only).

``read_gaussians`` / ``write_gaussians`` pick the format from the file suffix (case-insensitive).
Every reader raises ``FileFormatError`` with a one-line reason naming the file; every writer is
atomic (the target is replaced only by a complete file). Conventions: see ``ply.py`` and ``splat.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

from renderer.errors import FileFormatError
from renderer.gaussians import Gaussians
from renderer.io.ply import PlyArrays, read_ply, read_ply_raw, write_ply, write_ply_raw
from renderer.io.splat import read_splat, write_splat

__all__ = [
    "PlyArrays",
    "read_gaussians",
    "read_ply",
    "read_ply_raw",
    "read_splat",
    "write_gaussians",
    "write_ply",
    "write_ply_raw",
    "write_splat",
]


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in (".ply", ".splat"):
        raise FileFormatError(path, f"unknown Gaussian file type {suffix or '(no suffix)'!r}; use .ply or .splat")
    return suffix


def read_gaussians(path: str | os.PathLike) -> Gaussians:
    """Read a ``.ply`` (3DGS layout) or ``.splat`` file into float32 CPU ``Gaussians``."""
    path = Path(path)
    return read_ply(path) if _format(path) == ".ply" else read_splat(path)


def write_gaussians(path: str | os.PathLike, gaussians: Gaussians) -> None:
    """Write ``gaussians`` as ``.ply`` (3DGS layout, full SH) or ``.splat`` (DC colour) by suffix."""
    path = Path(path)
    if _format(path) == ".ply":
        write_ply(path, gaussians)
    else:
        write_splat(path, gaussians)
