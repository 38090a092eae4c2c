"""NeRF / Blender / instant-ngp / nerfstudio ``transforms*.json`` reader.

The file's convention:
- ``transform_matrix`` (4x4, or 3x4) is camera-to-world with OpenGL camera axes: x right, y up,
  the camera looks down -z. We convert at this boundary to OpenCV axes (x right, y down, z
  forward) by flipping the camera's y and z axes: ``c2w_cv = c2w_gl @ diag(1, -1, -1, 1)``.
- Intrinsics in pixels: ``fl_x, fl_y, cx, cy``, or the full fields of view ``camera_angle_x`` /
  ``camera_angle_y`` in radians (focal = 0.5 * size / tan(0.5 * angle)). A missing ``fl_y`` /
  angle y copies x; ``cx, cy`` default to the image centre ``w/2, h/2``. instant-ngp allows every
  one of these, ``w, h`` and the distortion keys per frame; a frame's own key wins.
- Image size: ``w, h`` (top level or per frame); else ``image_size`` when the caller knows the images
  (a camera file given apart from its images); else the header of the first frame's image.
- ``file_path`` is relative to the JSON's folder and may lack its extension (Blender lego:
  ``./train/r_0`` is ``train/r_0.png``); .png, .jpg, .jpeg are tried in that order.
- Distortion ``k1 k2 k3 k4 p1 p2`` (OpenCV names) is kept per frame as stored; K ignores it.

World frame: kept exactly as stored, in the file's units. instant-ngp's own loader also applies
``scale``, ``offset`` (and an axis swap) to fit its unit cube and uses ``aabb_scale`` for its
grid; those keys exist for that loader only and are ignored here, so that cameras (and every
output made from them) stay in the same world as the user's file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from recon.io.camera_set import (
    IMAGE_SUFFIXES,
    CameraSet,
    View,
    as_matrix,
    as_size,
    build_camera_set,
    frames_list,
    load_json,
    read_image_size,
)
from renderer.cameras import focal_from_fov
from renderer.errors import FileFormatError

# OpenGL camera axes (y up, looking down -z) -> OpenCV (y down, looking down +z). Self-inverse.
GL_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])

DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")
# nerfstudio's ``camera_model`` values that are pinhole plus OpenCV-style distortion.
PINHOLE_MODELS = {"PINHOLE", "SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL", "OPENCV", "FULL_OPENCV"}


def find_nerf_file(folder: Path) -> Path | None:
    """``transforms.json`` in ``folder``, else ``transforms_train.json``, else None."""
    for name in ("transforms.json", "transforms_train.json"):
        if (folder / name).is_file():
            return folder / name
    return None


def resolve_image(folder: Path, file_path: str) -> Path:
    """The image a ``file_path`` names, adding an extension when the stored path has none."""
    p = folder / file_path
    if p.exists() or p.suffix.lower() in IMAGE_SUFFIXES:
        return p
    for ext in IMAGE_SUFFIXES:
        candidate = p.with_name(p.name + ext)
        if candidate.exists():
            return candidate
    return p  # as stored: the image may simply not be on this machine


def read_nerf(
    path: str | Path,  # transforms*.json, or a folder holding transforms.json / transforms_train.json
    *,
    views: Sequence[View] | None = None,  # keep only these frames (indices or file names)
    dtype: torch.dtype = torch.float32,
    image_size: tuple[int, int] | None = None,  # (width, height) of the images when the file lacks w, h
) -> CameraSet:
    """Read a NeRF-style ``transforms.json`` into OpenCV cameras in the file's world frame.

    Returns a ``CameraSet`` of N frames in file order: c2w [N,4,4], K [N,3,3] in pixels of
    ``w x h``, distortion per frame, ``source="nerf"``.
    """
    path = Path(path)
    if path.is_dir():
        found = find_nerf_file(path)
        if found is None:
            raise FileFormatError(path, "no transforms.json or transforms_train.json in this folder")
        path = found
    data = load_json(path)
    frames = frames_list(data, path)
    folder = path.parent

    first_image_size: list[tuple[int, int]] = []  # filled lazily: most files state w and h

    def size_of(frame: dict, i: int) -> tuple[int, int]:
        w = frame.get("w", data.get("w"))
        h = frame.get("h", data.get("h"))
        if w is not None and h is not None:
            return as_size(w, f"frame {i} width 'w'", path), as_size(h, f"frame {i} height 'h'", path)
        if image_size is not None:
            return int(image_size[0]), int(image_size[1])
        if not first_image_size:
            first = resolve_image(folder, str(frames[0].get("file_path", "")))
            first_image_size.append(read_image_size(first, path))
        return first_image_size[0]

    c2w, K, sizes, image_paths, distortion = [], [], [], [], []
    for i, frame in enumerate(frames):
        if "transform_matrix" not in frame:
            raise FileFormatError(path, f"frame {i} is missing key 'transform_matrix'")
        if "file_path" not in frame:
            raise FileFormatError(path, f"frame {i} is missing key 'file_path'")
        _check_model(frame, data, i, path)
        c2w_gl = as_matrix(frame["transform_matrix"], 4, 4, f"frame {i} transform_matrix", path, allow_3x4=True)
        c2w.append(c2w_gl @ GL_TO_CV)
        w, h = size_of(frame, i)
        fx, fy = _focals(frame, data, w, h, i, path)
        cx = _number(frame.get("cx", data.get("cx", w / 2)), f"frame {i} cx", path)
        cy = _number(frame.get("cy", data.get("cy", h / 2)), f"frame {i} cy", path)
        K.append(np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]]))
        sizes.append((w, h))
        image_paths.append(resolve_image(folder, str(frame["file_path"])))
        distortion.append(
            {
                k: _number(frame.get(k, data.get(k)), f"frame {i} {k}", path)
                for k in DISTORTION_KEYS
                if frame.get(k, data.get(k)) is not None
            }
        )
    return build_camera_set(path, "nerf", np.stack(c2w), np.stack(K), sizes, image_paths, distortion, views=views, dtype=dtype)


def _number(value, what: str, path: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FileFormatError(path, f"{what} must be a number, got {value!r}")
    return float(value)


def _focals(frame: dict, data: dict, w: int, h: int, i: int, path: Path) -> tuple[float, float]:
    """``(fx, fy)`` in pixels: a frame's own focal keys win over the top level's; explicit
    focal lengths win over fields of view (they are what COLMAP measured, unrounded)."""

    def focal(src: dict, fl_key: str, angle_key: str, size: int) -> float | None:
        if src.get(fl_key) is not None:
            return _number(src[fl_key], f"frame {i} {fl_key}", path)
        if src.get(angle_key) is not None:
            angle = _number(src[angle_key], f"frame {i} {angle_key}", path)
            if not 0.0 < angle < math.pi:
                raise FileFormatError(path, f"frame {i} {angle_key} must be a field of view in (0, pi) radians, got {angle}")
            return focal_from_fov(angle, size)
        return None

    own = (focal(frame, "fl_x", "camera_angle_x", w), focal(frame, "fl_y", "camera_angle_y", h))
    top = (focal(data, "fl_x", "camera_angle_x", w), focal(data, "fl_y", "camera_angle_y", h))
    fx = own[0] if own[0] is not None else (top[0] if own[1] is None else None)
    fy = own[1] if own[1] is not None else (top[1] if own[0] is None else None)
    if fx is None and fy is None:
        raise FileFormatError(path, f"frame {i} has no focal length: expected 'fl_x' or 'camera_angle_x'")
    return (fx if fx is not None else fy), (fy if fy is not None else fx)


def _check_model(frame: dict, data: dict, i: int, path: Path) -> None:
    """Refuse fisheye / panoramic cameras: a pinhole K plus OpenCV distortion cannot hold them."""
    if frame.get("is_fisheye", data.get("is_fisheye")):
        raise FileFormatError(path, f"frame {i} is a fisheye camera ('is_fisheye'), which is not supported: undistort the images first")
    model = frame.get("camera_model", data.get("camera_model"))
    if model is not None and str(model).upper() not in PINHOLE_MODELS:
        raise FileFormatError(path, f"camera_model {model!r} is not supported (only pinhole models with OpenCV distortion): undistort the images first")
