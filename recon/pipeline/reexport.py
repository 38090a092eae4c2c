"""Re-export a saved reconstruction (``gaussians.ply``, or a folder that ``write_outputs`` wrote) as a
game-ready mesh, without re-running the model. ``recon export`` calls ``export_from_run``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from recon.core.errors import ReconError
from recon.core.types import Views
from recon.export import MeshExportOptions, export_mesh
from recon.export.api import check_placement
from recon.io import read_cameras_json
from recon.pipeline.inputs import load_images
from recon.pipeline.load import views_from_images
from renderer.io import read_gaussians


@dataclass(frozen=True)
class ExportRequest:
    source: Path  # gaussians.ply / .splat, or a run folder holding gaussians.ply (and cameras.json)
    to: Path  # output mesh file; the suffix picks the format
    faces: int = 20000
    texture_size: int = 1024
    lods: tuple[float, ...] = ()  # extra levels as fractions of ``faces``, each in (0, 1)
    up: tuple[float, float, float] | None = None  # source up; None: the run's mean camera up, else +z
    scale: float = 1.0  # metres per source unit
    pivot: str = "bottom_center"
    vertex_colors: bool = False
    photos: Path | None = None  # image files or a folder of the run's input photos: texture projected from them


def load_photos(photos: Path, cameras_json: Path) -> Views:
    """The input photos of a run as ``Views``: the images in ``photos`` (files or a folder) named
    like the frames of ``cameras_json``, in its order and world frame; alpha channels become
    foreground masks (when every photo has one); cameras are rescaled to the photos' size."""
    cset = read_cameras_json(cameras_json)
    images = {im.name: im for im in load_images(photos, exif_orientation=False)}
    missing = [n for n in cset.names if n not in images]
    if missing:
        raise ReconError(f"{photos}: no image named {missing[0]} (of {len(cset.names)} in {cameras_json.name}, "
                         f"{len(missing)} missing)")
    picked = [images[n] for n in cset.names]
    sizes = {im.size for im in picked}
    if len(sizes) != 1:
        raise ReconError(f"{photos}: the photos must share one size, got {sorted(sizes)}")
    (W, H), = sizes
    cams = cset.cameras if (cset.cameras.width, cset.cameras.height) == (W, H) else cset.cameras.resize(W, H)
    return views_from_images(picked, cams, cset.names)


def run_up(cameras_json: Path) -> tuple[float, float, float]:
    """The mean camera up (-y of the OpenCV cameras) of a run's ``cameras.json``, unit length."""
    c2w = read_cameras_json(cameras_json).cameras.c2w.double()
    v = -c2w[:, :3, 1].mean(0)
    return tuple(float(a) for a in v / v.norm().clamp_min(1e-12))


def _gaussians_file(source: Path) -> Path:
    if not source.exists():
        raise ReconError(f"{source}: no such file or folder")
    ply = source / "gaussians.ply" if source.is_dir() else source
    if not ply.is_file():
        raise ReconError(f"{source}: no gaussians.ply in this folder")
    return ply


def _check(req: ExportRequest) -> None:
    if req.to.is_dir():
        raise ReconError(f"{req.to}: is a folder; give a mesh file name such as mesh.glb")
    if not req.to.parent.is_dir():
        raise ReconError(f"{req.to.parent}: output folder does not exist")
    if not os.access(req.to.parent, os.W_OK | os.X_OK):  # refused before the Gaussians are meshed
        raise ReconError(f"{req.to}: cannot write: permission denied ({req.to.parent} is read-only)")
    if any(not 0 < v < 1 for v in req.lods):
        raise ReconError(f"lods: fractions must be in (0, 1), got {req.lods}")
    check_placement(req.up if req.up is not None else (0.0, 0.0, 1.0), req.scale)
    if req.photos is not None and not Path(req.photos).exists():
        raise ReconError(f"{req.photos}: no such file or folder (photos)")


def export_from_run(req: ExportRequest) -> dict:
    """Mesh the Gaussians of ``req.source`` into ``req.to``; returns ``recon.export.export_mesh``'s report.
    Every argument is checked (one-line ``ReconError``) before the Gaussians are read."""
    ply = _gaussians_file(Path(req.source))
    _check(req)
    cameras_json = ply.parent / "cameras.json"
    up = req.up if req.up is not None else run_up(cameras_json) if cameras_json.is_file() else (0.0, 0.0, 1.0)
    if sum(a * a for a in up) < 1e-12:
        raise ReconError(f"{cameras_json}: the cameras' mean up direction is the zero vector; give up")
    photos = None
    if req.photos is not None:
        if not cameras_json.is_file():
            raise ReconError(f"photos need the run's cameras.json next to {ply.name}")
        photos = load_photos(Path(req.photos), cameras_json)
    g = read_gaussians(ply)
    if len(g) == 0:
        raise ReconError(f"{ply}: holds no Gaussians")
    opts = MeshExportOptions(faces=req.faces, texture_size=req.texture_size, vertex_colors=req.vertex_colors,
                             lods=req.lods, up=up, scale=req.scale, pivot=req.pivot)
    with torch.no_grad():
        return export_mesh(g, req.to, opts, photos=photos)
