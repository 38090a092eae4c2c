"""Mesh files for game engines and DCC tools: GLB, OBJ + MTL + PNG (zipped or loose), PLY, STL.

Every writer takes geometry already in the output frame (glTF conventions: +Y up, metres,
right-handed; see ``placement``) and writes atomically: a target is replaced only by a complete file.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import trimesh
from PIL import Image
from trimesh.exchange.gltf import export_glb
from trimesh.exchange.obj import export_obj

from renderer.io.atomic import atomic_output

ROUGHNESS = 0.8  # a rough dielectric default: photos bake lighting into the base colour


def up_to_y_rotation(up) -> np.ndarray:
    """``[3, 3]`` proper rotation (det +1) taking the unit vector along ``up`` to +Y, the smallest such turn.

    World +Z up gives ``(x, y, z) -> (x, z, -y)`` (the usual Z-up to Y-up conversion). ``up`` = -Y
    turns 180 degrees about X.
    """
    a = np.asarray(up, np.float64).reshape(3)
    if np.linalg.norm(a) < 1e-12:
        raise ValueError("up vector must be non-zero")
    a = a / np.linalg.norm(a)
    b = np.array([0.0, 1.0, 0.0])
    c = float(a @ b)
    if c < -1 + 1e-9:
        return np.diag([1.0, -1.0, -1.0])
    v = np.cross(a, b)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1 + c)


def placement(vertices: np.ndarray, up=(0.0, 0.0, 1.0), scale: float = 1.0, pivot: str = "bottom_center"
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map source-frame ``vertices [V, 3]`` to the output frame: ``out = scale * R v + t``.

    ``R = up_to_y_rotation(up)``; ``scale`` turns source units into metres; ``pivot``
    ``"bottom_center"`` puts the bounding box's bottom-face centre at the origin, ``"center"`` its
    centre, ``"none"`` keeps the source origin. Returns ``(out [V, 3], R [3, 3], t [3])``.
    """
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    R = up_to_y_rotation(up)
    out = scale * np.asarray(vertices, np.float64) @ R.T
    t = np.zeros(3)
    if len(out) and pivot != "none":
        lo, hi = out.min(0), out.max(0)
        center = 0.5 * (lo + hi)
        if pivot == "bottom_center":
            t = -np.array([center[0], lo[1], center[2]])
        elif pivot == "center":
            t = -center
        else:
            raise ValueError(f"pivot must be bottom_center, center or none, got {pivot!r}")
    return out + t, R, t


def _trimesh(vertices, faces, normals, uvs=None, texture=None, colors=None):
    if uvs is not None and texture is not None:
        material = trimesh.visual.material.PBRMaterial(
            name="baked", baseColorTexture=Image.fromarray(texture), metallicFactor=0.0, roughnessFactor=ROUGHNESS)
        visual = trimesh.visual.TextureVisuals(uv=uvs, material=material)
    elif colors is not None:
        rgba = np.concatenate([(np.clip(colors, 0, 1) * 255).round(), np.full((len(colors), 1), 255)], 1)
        visual = trimesh.visual.ColorVisuals(vertex_colors=rgba.astype(np.uint8))
    else:
        visual = None
    return trimesh.Trimesh(vertices, faces, vertex_normals=normals, visual=visual, process=False)


def write_glb(path: Path, vertices, faces, normals, uvs=None, texture=None, colors=None) -> None:
    """Binary glTF 2.0: one mesh, PBR metallic-roughness material (metallic 0, roughness 0.8) with
    ``texture [S, S, 3]`` uint8 as baseColorTexture (or COLOR_0 vertex colours), normals included."""
    tm = _trimesh(vertices, faces, normals, uvs, texture, colors)
    if texture is None and colors is None:  # plain geometry: still a rough, non-metallic PBR material
        tm.visual.material = trimesh.visual.material.PBRMaterial(
            name="default", baseColorFactor=[204, 204, 204, 255], metallicFactor=0.0, roughnessFactor=ROUGHNESS)
    data = export_glb(tm, include_normals=True)
    with atomic_output(Path(path)) as f:
        f.write(data)


def obj_files(stem: str, vertices, faces, normals, uvs=None, texture=None, colors=None) -> dict[str, bytes]:
    """``{stem.obj, stem.mtl, <texture>.png}`` contents (Wavefront OBJ with ``map_Kd``)."""
    tm = _trimesh(vertices, faces, normals, uvs, texture, colors)
    text, extra = export_obj(tm, include_normals=True, include_texture=True, return_texture=True,
                             mtl_name=f"{stem}.mtl")
    files = {f"{stem}.obj": text.encode()}
    files.update({name: bytes(data) for name, data in extra.items()})
    return files


def write_obj(path: Path, vertices, faces, normals, uvs=None, texture=None, colors=None) -> list[Path]:
    """OBJ + MTL + PNG: one zip archive when ``path`` ends in ``.zip`` (``model.obj.zip``), else loose
    files next to ``path``. Returns the paths written."""
    path = Path(path)
    zipped = path.suffix.lower() == ".zip"
    stem = Path(path.stem).stem if zipped else path.stem
    files = obj_files(stem, vertices, faces, normals, uvs, texture, colors)
    if zipped:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in files.items():
                z.writestr(name, data)
        with atomic_output(path) as f:
            f.write(buf.getvalue())
        return [path]
    written = []
    for name, data in files.items():  # texture and MTL first, the OBJ that names them last
        target = path.parent / name
        if name.endswith(".obj"):
            continue
        with atomic_output(target) as f:
            f.write(data)
        written.append(target)
    with atomic_output(path) as f:
        f.write(files[f"{stem}.obj"])
    return [*written, path]


def write_ply(path: Path, vertices, faces, normals, colors=None) -> None:
    """Binary PLY with vertex normals and (when given) 8-bit vertex colours."""
    tm = _trimesh(vertices, faces, normals, colors=colors)
    data = tm.export(file_type="ply", encoding="binary", include_attributes=True)
    with atomic_output(Path(path)) as f:
        f.write(data)


def write_stl(path: Path, vertices, faces) -> None:
    """Binary STL (geometry only)."""
    data = trimesh.Trimesh(vertices, faces, process=False).export(file_type="stl")
    with atomic_output(Path(path)) as f:
        f.write(data)
