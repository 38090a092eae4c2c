"""Reading triangle mesh files (OBJ, PLY, GLB, STL, ... anything trimesh reads) with one-line errors."""

from __future__ import annotations

from pathlib import Path

import trimesh

from recon.core.errors import ReconError


def read_trimesh(path: str | Path):
    """The file at ``path`` as one ``trimesh.Trimesh`` (scene graph transforms applied, no vertex
    merging). Raises ``ReconError`` when the file is missing, unreadable, or holds no triangles."""
    path = Path(path)
    if not path.is_file():
        raise ReconError(f"mesh file not found: {path}")
    try:
        tm = trimesh.load(str(path), force="mesh", process=False)
    except Exception as e:  # noqa: BLE001 - trimesh raises many types for unreadable files
        raise ReconError(f"cannot read mesh {path.name}: {e}") from None
    if not isinstance(tm, trimesh.Trimesh) or len(tm.faces) == 0:
        raise ReconError(f"{path.name} holds no triangles")
    return tm
