"""Mesh export from a session's cached reconstruction (GLB + OBJ zip), never re-running the network.

The mesh itself comes from ``recon.export.export_mesh``; this module only maps the page's settings
onto its options and caches the extracted surface per reconstruction and files per settings.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import gradio as gr

from recon.core.errors import ReconError
from recon.export import (
    MeshExportOptions,
    TsdfOptions,
    export_mesh,
    gaussian_color_fn,
    mesh_from_gaussians,
)

log = logging.getLogger("recon.app")
UP_AXES = {"+Z (z up)": (0.0, 0.0, 1.0), "+Y (y up)": (0.0, 1.0, 0.0), "-Y (OpenCV camera up)": (0.0, -1.0, 0.0),
           "Cameras (mean camera up)": None}


@dataclass(frozen=True)
class MeshSettings:
    faces: int = 20_000  # triangle budget
    texture_size: int = 1024  # texels per edge of the baked base-colour texture
    up: str = "Cameras (mean camera up)"  # a key of UP_AXES


def _up_vector(cache, up: str) -> tuple[float, float, float]:
    if up not in UP_AXES:
        raise gr.Error(f"unknown up axis {up!r}")
    vec = UP_AXES[up]
    if vec is None:  # the reconstruction's own up: mean camera up (OpenCV -y)
        c2w = cache.result.cameras.c2w.detach().float().cpu()
        v = -c2w[:, :3, 1].mean(0)
        v = v / v.norm().clamp_min(1e-8)
        vec = tuple(float(x) for x in v)
    return vec


FORMATS = {"glb": "mesh.glb", "obj": "mesh.obj.zip"}


def _folder_name(settings: MeshSettings) -> str:
    return f"mesh_f{int(settings.faces)}_t{int(settings.texture_size)}_u{list(UP_AXES).index(settings.up)}"


def export_mesh_from_cache(cache, settings: MeshSettings, fmt: str = "glb") -> dict:
    """One mesh file (``fmt``: "glb" or "obj", the latter a zip of OBJ, MTL and texture) of the cached
    Gaussians with ``settings``; returns ``{"path", "faces", "seconds", "cached"}``. The surface
    (render + TSDF fusion, the slow part) is extracted once per reconstruction and each file once per
    settings; the network is never run. Raises ``gr.Error`` when there is no reconstruction yet, a
    setting is out of range or mesh export is unavailable."""
    if cache is None or getattr(cache, "result", None) is None:
        raise gr.Error("Reconstruct first: mesh export works on the current reconstruction.")
    if not 100 <= int(settings.faces) <= 500_000:
        raise gr.Error(f"face budget must be between 100 and 500000, got {settings.faces}")
    if int(settings.texture_size) not in (256, 512, 1024, 2048):
        raise gr.Error(f"texture size must be 256, 512, 1024 or 2048, got {settings.texture_size}")
    if settings.up not in UP_AXES:
        raise gr.Error(f"unknown up axis {settings.up!r}")
    if fmt not in FORMATS:
        raise gr.Error(f"unknown mesh format {fmt!r}: use glb or obj")
    if (settings, fmt) in cache.meshes:
        return {**cache.meshes[(settings, fmt)], "cached": True}
    t0 = time.perf_counter()
    folder = cache.run_dir / _folder_name(settings)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        if cache.surface is None:  # the expensive part (render + TSDF), once per reconstruction
            g = cache.result.gaussians
            color_fn = gaussian_color_fn(g, min_opacity=TsdfOptions().point_min_opacity)
            cache.surface = (mesh_from_gaussians(g, up=_up_vector(cache, "Cameras (mean camera up)"), color_fn=color_fn),
                             color_fn)
            log.info("surface extracted for session %s: %d faces, %.2f s", getattr(cache, "name", "?"),
                     len(cache.surface[0].faces), time.perf_counter() - t0)
        surface, color_fn = cache.surface
        opts = MeshExportOptions(faces=int(settings.faces), texture_size=int(settings.texture_size),
                                 up=_up_vector(cache, settings.up), color_fn=color_fn)
        path = folder / FORMATS[fmt]
        info = export_mesh(surface, path, opts, photos=getattr(cache.result, "photos", None))
    except gr.Error:
        raise
    except Exception as e:  # noqa: BLE001 (ReconError or a bug: shown in the page, the app keeps serving)
        user_error = isinstance(e, ReconError) or hasattr(e, "path")  # one line in the page, no traceback
        raise gr.Error(f"Mesh export failed: {e}", print_exception=not user_error) from None
    out = {"path": path, "faces": info.get("faces"), "seconds": round(time.perf_counter() - t0, 2)}
    cache.meshes[(settings, fmt)] = out
    return {**out, "cached": False}
