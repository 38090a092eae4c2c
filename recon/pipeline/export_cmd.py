"""``recon export``: a saved reconstruction (``gaussians.ply`` or a ``recon reconstruct`` folder) to a
game-ready mesh, without re-running the model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from recon.errors import ReconError


@dataclass
class ExportRequest:
    source: Path  # gaussians.ply / .splat, or a run folder holding gaussians.ply (and cameras.json)
    to: Path  # output mesh file; the suffix picks the format
    faces: int = 20000
    texture_size: int = 1024
    lods: str = ""  # "0.25,0.06"
    up: str | None = None  # "x,y,z"; default: the run's mean camera up, else z
    scale: float = 1.0
    pivot: str = "bottom_center"
    vertex_colors: bool = False
    photos: Path | None = None  # image files or a folder of the run's input photos: texture projected from them


def load_photos(photos: Path, cameras_json: Path):
    """The input photos of a run as ``Views``: the images in ``photos`` (files or a folder) named
    like the frames of ``cameras_json``, in its order and world frame; alpha channels become
    foreground masks (when every photo has one); cameras are rescaled to the photos' size."""
    from recon.io import read_cameras_json
    from recon.pipeline.inputs import load_images
    from recon.pipeline.run import views_from_images

    cset = read_cameras_json(cameras_json)
    images = {im.name: im for im in load_images(photos, exif_orientation=False)}
    missing = [n for n in cset.names if n not in images]
    if missing:
        raise ReconError(f"--photos {photos}: no image named {missing[0]} (of {len(cset.names)} in {cameras_json.name}, "
                         f"{len(missing)} missing)")
    picked = [images[n] for n in cset.names]
    sizes = {im.size for im in picked}
    if len(sizes) != 1:
        raise ReconError(f"--photos {photos}: the photos must share one size, got {sorted(sizes)}")
    (W, H), = sizes
    cams = cset.cameras if (cset.cameras.width, cset.cameras.height) == (W, H) else cset.cameras.resize(W, H)
    return views_from_images(picked, cams, cset.names)


def _parse_floats(text: str, n: int | None, what: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ReconError(f"{what}: expected comma-separated numbers, got {text!r}") from None
    if n is not None and len(vals) != n:
        raise ReconError(f"{what}: expected {n} numbers, got {text!r}")
    return vals


def export_from_run(req: ExportRequest) -> dict:
    """Mesh the Gaussians of ``req.source`` into ``req.to``; returns ``recon.export``'s report."""
    from recon.export import MeshExportOptions, export_mesh
    from renderer.io import read_gaussians

    src = Path(req.source)
    if not src.exists():
        raise ReconError(f"{src}: no such file or folder")
    ply = src / "gaussians.ply" if src.is_dir() else src
    if not ply.is_file():
        raise ReconError(f"{src}: no gaussians.ply in this folder")
    if req.to.exists() and req.to.is_dir():
        raise ReconError(f"{req.to}: is a folder; give a mesh file name such as mesh.glb")
    if not req.to.parent.is_dir():
        raise ReconError(f"{req.to.parent}: output folder does not exist")
    lods = _parse_floats(req.lods, None, "--lod") if req.lods else ()
    if any(not 0 < v < 1 for v in lods):
        raise ReconError(f"--lod: fractions must be in (0, 1), got {req.lods!r}")
    if req.scale <= 0:
        raise ReconError(f"--scale must be positive, got {req.scale}")
    if req.up is not None:
        up = _parse_floats(req.up, 3, "--up")
    else:
        up = (0.0, 0.0, 1.0)
        cams = ply.parent / "cameras.json"
        if cams.is_file():
            from recon.io import read_cameras_json

            c2w = read_cameras_json(cams).cameras.c2w.double()
            v = -c2w[:, :3, 1].mean(0)
            up = tuple(float(a) for a in v / v.norm().clamp_min(1e-12))
    if sum(a * a for a in up) < 1e-12:
        raise ReconError("--up must not be the zero vector")
    photos = None
    if req.photos is not None:
        if not (ply.parent / "cameras.json").is_file():
            raise ReconError(f"--photos needs the run's cameras.json next to {ply.name}")
        if not Path(req.photos).exists():
            raise ReconError(f"--photos {req.photos}: no such file or folder")
        photos = load_photos(Path(req.photos), ply.parent / "cameras.json")
    g = read_gaussians(ply)
    if len(g) == 0:
        raise ReconError(f"{ply}: holds no Gaussians")
    opts = MeshExportOptions(faces=req.faces, texture_size=req.texture_size, vertex_colors=req.vertex_colors,
                             lods=lods, up=up, scale=req.scale, pivot=req.pivot)
    with torch.no_grad():
        return export_mesh(g, req.to, opts, photos=photos)
