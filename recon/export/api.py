"""``export_mesh``: a reconstruction (mesh or Gaussians) to a game-ready mesh file in one call.

Stages: extract (Gaussians only: render + TSDF) -> clean -> decimate to the face budget (+ LODs)
-> place (+Y up, metres, pivot) -> UV unwrap + bake (textured formats) -> write atomically.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from recon.core.errors import ReconError
from recon.core.types import Mesh, Views
from recon.export._convert import to_numpy
from recon.export.cleanup import (
    CleanupOptions,
    clean_mesh,
    lod_chain,
    mesh_report,
    vertex_normals,
)
from recon.export.extract import (
    ColorFn,
    TsdfOptions,
    gaussian_color_fn,
    mesh_from_gaussians,
    vertex_color_fn,
)
from recon.export.files import placement, write_glb, write_obj, write_ply, write_stl
from recon.export.photo import PhotoBakeOptions, photo_color_fn
from recon.export.texture import UVMesh, bake_texture, unwrap
from renderer import Gaussians

FORMATS = {".glb": "glb", ".obj": "obj", ".zip": "obj", ".ply": "ply", ".stl": "stl"}


@dataclass
class MeshExportOptions:
    """How ``export_mesh`` shapes its output. Lengths are in source units unless stated."""

    faces: int = 20_000  # triangle budget of the main mesh (LOD0)
    texture_size: int = 1024  # base-colour texture edge in texels (GLB/OBJ)
    vertex_colors: bool = False  # GLB/OBJ: per-vertex colours instead of UVs + texture
    lods: tuple[float, ...] = ()  # extra levels as fractions of ``faces`` (e.g. (0.25, 0.06)): <stem>_lod1<ext>, ...
    up: tuple[float, float, float] = (0.0, 0.0, 1.0)  # the source's up direction, mapped to glTF +Y
    scale: float = 1.0  # metres per source unit
    pivot: str = "bottom_center"  # "bottom_center", "center" or "none"
    padding_px: int = 4  # texels between UV charts (islands are dilated into it)
    uv_chart_iterations: int = 0  # xatlas chart growing passes (0: fastest; xatlas's default is 1)
    cleanup: CleanupOptions = field(default_factory=CleanupOptions)
    tsdf: TsdfOptions = field(default_factory=TsdfOptions)  # Gaussians -> surface settings
    photo_bake: PhotoBakeOptions = field(default_factory=PhotoBakeOptions)  # blending of ``photos`` (export_mesh)
    color_fn: ColorFn | None = None  # points [P,3] (source frame) -> rgb [P,3] in [0,1]; default from the source


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".zip" and not path.name.lower().endswith(".obj.zip"):
        raise ReconError(f"cannot tell the mesh format of {path.name}: use .glb, .obj, .obj.zip, .ply or .stl")
    if suffix not in FORMATS:
        raise ReconError(f"unknown mesh format {suffix or '(none)'} for {path.name}: use .glb, .obj, .obj.zip, .ply or .stl")
    return FORMATS[suffix]


def check_placement(up: Sequence[float], scale: float) -> None:
    """Refuse (``ReconError``) an up direction that is not a finite non-zero 3-vector and a scale that
    is not a finite positive number: NaN would reach every vertex of the file."""
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise ReconError(f"scale must be a finite number > 0, got {scale!r}")
    if len(up) != 3 or not all(math.isfinite(float(a)) for a in up) or sum(float(a) ** 2 for a in up) < 1e-12:
        raise ReconError(f"up must be a finite non-zero 3-vector, got {tuple(up)}")


def _lod_path(path: Path, level: int) -> Path:
    if level == 0:
        return path
    name = path.name
    cut = len(".obj.zip") if name.lower().endswith(".obj.zip") else len(path.suffix)
    return path.with_name(f"{name[:-cut]}_lod{level}{name[-cut:]}")


def export_mesh(source: Mesh | Gaussians, path: str | Path | Sequence[str | Path],
                options: MeshExportOptions | None = None, photos: Views | None = None) -> dict:
    """Write ``source`` as a game-ready mesh file at ``path``; the format follows the suffix.

    ``path`` may also be a list of paths (e.g. ``["mesh.glb", "mesh.obj.zip"]``): the surface,
    clean-up, decimation, UVs and texture are made once and written in every format.

    ``source``: a ``Mesh`` (vertices [V,3] source units, faces [F,3], optional vertex_colors [V,3]
    in [0,1]) or ``Gaussians`` (activated, world frame; surfaced by render + TSDF fusion). Output:
    +Y up (``options.up`` -> +Y by the smallest rotation), ``options.scale`` metres per source unit,
    pivot per ``options.pivot``; ``.glb`` and ``.obj``/``.obj.zip`` get xatlas UVs and a baked
    ``texture_size``^2 base-colour PNG (or vertex colours), ``.ply`` vertex colours, ``.stl`` geometry.

    ``photos``: posed input photos in the source's frame (``Views``: images, cameras, optional
    foreground masks). When given, colours come from the photos that see each surface point
    (``photo_color_fn``, full photo resolution) and from the source's own colours where none does.

    Returns a report: ``format``, ``files``, ``faces``, ``vertices``, ``topology`` (``mesh_report``
    of the cleaned mesh before decimation and of each written level), ``uv_coverage``,
    ``bbox_min``/``bbox_max`` (output frame, metres), ``rotation`` [3,3], ``translation`` [3] and
    per-stage ``seconds``. Raises ``ReconError`` for an unknown suffix or when no surface is found.

    Example::

        >>> import torch, tempfile, os
        >>> from recon.core.types import Mesh
        >>> v = torch.tensor([[0., 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
        >>> f = torch.tensor([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
        >>> out = os.path.join(tempfile.mkdtemp(), "tet.glb")
        >>> export_mesh(Mesh(v, f), out, MeshExportOptions(faces=4, texture_size=64))["faces"]
        4
    """
    many = not isinstance(path, (str, Path))
    paths = [Path(p) for p in path] if many else [Path(path)]
    if not paths:
        raise ReconError("no mesh file to write")
    o = options or MeshExportOptions()
    fmts = [_format(p) for p in paths]
    if o.faces < 4:
        raise ReconError(f"the face budget must be at least 4, got {o.faces}")
    check_placement(o.up, o.scale)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    mesh, color_fn = _surface(source, o, seconds, t0)
    levels, cleaned = _clean_and_decimate(mesh, o, seconds)
    textured = any(fmt in ("glb", "obj") for fmt in fmts) and not o.vertex_colors
    colored = any(fmt == "ply" or (fmt in ("glb", "obj") and o.vertex_colors) for fmt in fmts)
    ref_v, _, _ = to_numpy(levels[0])
    _, R, trans = placement(ref_v, o.up, o.scale, o.pivot)  # one placement for all levels
    files, reports, coverage = [], [], None
    seconds["unwrap"] = seconds["bake"] = seconds["write"] = 0.0
    for level, m in enumerate(levels):
        v, f, _ = to_numpy(m)
        uv, texture, colors, cov = _level_colors(v, f, o, color_fn, photos, textured, colored, seconds)
        coverage = cov if level == 0 else coverage
        files += _write_level(level, paths, fmts, _Placed(v, f, uv, texture, colors, o.scale, R, trans), seconds)
        reports.append({"level": level, "file": str(_lod_path(paths[0], level)), **mesh_report(m)})
    seconds["total"] = time.perf_counter() - t0
    v0 = o.scale * ref_v @ R.T + trans
    return {
        "format": fmts if many else fmts[0],
        "files": files,
        "faces": reports[0]["faces"],
        "vertices": reports[0]["vertices"],
        "face_budget": o.faces,
        "texture_size": o.texture_size if textured else None,
        "uv_coverage": coverage,
        "colors_from": ("photos" if photos is not None else "source") if textured or colored else None,
        "topology": {"cleaned": cleaned, "levels": reports},
        "bbox_min": v0.min(0).tolist(),
        "bbox_max": v0.max(0).tolist(),
        "rotation": R.tolist(),
        "translation": trans.tolist(),
        "options": {k: v for k, v in asdict(o).items() if k != "color_fn"},
        "seconds": seconds,
    }


def _surface(source: Mesh | Gaussians, o: MeshExportOptions, seconds: dict[str, float],
             t0: float) -> tuple[Mesh, ColorFn]:
    """The surface to export (source frame and units) and its colour callback: ``source`` itself
    when it is a mesh, else the TSDF surface of the Gaussians (timed as ``seconds["extract"]``)."""
    if isinstance(source, Gaussians):
        if len(source) == 0:
            raise ReconError("no Gaussians to make a mesh from")
        color_fn = o.color_fn or gaussian_color_fn(source, min_opacity=o.tsdf.point_min_opacity)
        mesh = mesh_from_gaussians(source, o.tsdf, o.up, color_fn, faces=o.faces)
        seconds["extract"] = time.perf_counter() - t0
    elif isinstance(source, Mesh):
        mesh, color_fn = source, o.color_fn or vertex_color_fn(source)
    else:
        raise TypeError(f"source must be a Mesh or Gaussians, got {type(source).__name__}")
    if len(mesh.faces) == 0:
        raise ReconError("no surface found to export")
    return mesh, color_fn


def _clean_and_decimate(mesh: Mesh, o: MeshExportOptions, seconds: dict[str, float]) -> tuple[list[Mesh], dict]:
    """The cleaned mesh decimated to ``o.faces`` and each of ``o.lods`` (LOD0 first), and the
    ``mesh_report`` of the cleaned mesh before decimation; timed as ``cleanup`` and ``decimate``."""
    t = time.perf_counter()
    mesh = clean_mesh(mesh, o.cleanup)
    if len(mesh.faces) == 0:
        raise ReconError("no surface left after clean-up")
    cleaned = mesh_report(mesh)
    seconds["cleanup"] = time.perf_counter() - t

    t = time.perf_counter()
    levels = lod_chain(mesh, o.faces, (1.0, *o.lods))
    seconds["decimate"] = time.perf_counter() - t
    return levels, cleaned


def _level_colors(v: np.ndarray, f: np.ndarray, o: MeshExportOptions, color_fn: ColorFn, photos: Views | None,
                  textured: bool, colored: bool, seconds: dict[str, float]):
    """Colours of one level (``v [V, 3]`` source frame, ``f [F, 3]``): ``(uv, texture, colors,
    coverage)``; ``uv`` (a seam-split ``UVMesh``), the baked ``texture [S, S, 3]`` uint8 and its
    ``coverage`` when ``textured``, vertex ``colors [V, 3]`` in [0, 1] when ``colored``, else None.
    With ``photos`` the colours come from them (this level is its own occluder), ``color_fn`` elsewhere."""
    uv = texture = colors = coverage = None
    level_color_fn = color_fn
    if photos is not None and (textured or colored):
        t = time.perf_counter()
        level_color_fn = photo_color_fn(photos, v, f, color_fn, o.photo_bake)
        seconds["bake"] += time.perf_counter() - t
    if textured:
        t = time.perf_counter()
        uv = unwrap(v, f, o.texture_size, o.padding_px, o.uv_chart_iterations)
        seconds["unwrap"] += time.perf_counter() - t
        t = time.perf_counter()
        texture, coverage = bake_texture(uv, level_color_fn, o.texture_size)
        seconds["bake"] += time.perf_counter() - t
    if colored:
        colors = np.asarray(level_color_fn(v), np.float64).reshape(-1, 3)
    return uv, texture, colors, coverage


@dataclass
class _Placed:
    """One level ready to write: source-frame ``v [V, 3]``, ``f [F, 3]``, optional ``uv`` (UVMesh),
    ``texture`` and vertex ``colors``, and the placement ``out = scale * R v + trans`` (metres, +Y up)."""

    v: np.ndarray
    f: np.ndarray
    uv: UVMesh | None
    texture: np.ndarray | None
    colors: np.ndarray | None
    scale: float
    R: np.ndarray
    trans: np.ndarray


def _write_level(level: int, paths: list[Path], fmts: list[str], p: _Placed, seconds: dict[str, float]) -> list[str]:
    """Write level ``level`` in every format (``_lod_path`` names); returns the files written."""
    out_v = p.scale * p.v @ p.R.T + p.trans
    normals = vertex_normals(out_v, p.f)
    if p.uv is not None:  # seam-split copy for the textured formats
        uv_v = p.scale * p.uv.vertices @ p.R.T + p.trans
        uv_normals = normals[p.uv.source_index]
    files = []
    t = time.perf_counter()
    for path, fmt in zip(paths, fmts):
        target = _lod_path(path, level)
        if fmt in ("glb", "obj") and p.uv is not None:
            args = (target, uv_v, p.uv.faces, uv_normals, p.uv.uvs, p.texture, None)
        else:
            args = (target, out_v, p.f, normals, None, None, p.colors)
        if fmt == "glb":
            write_glb(*args)
            files.append(str(target))
        elif fmt == "obj":
            files.extend(str(q) for q in write_obj(*args))
        elif fmt == "ply":
            write_ply(target, out_v, p.f, normals, p.colors)
            files.append(str(target))
        else:
            write_stl(target, out_v, p.f)
            files.append(str(target))
    seconds["write"] += time.perf_counter() - t
    return files
