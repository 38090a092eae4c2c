"""COLMAP sparse model reader (text or binary, read through pycolmap).

The file's convention: each registered image stores ``cam_from_world`` (world-to-camera, rigid)
with OpenCV camera axes, which are ours, so the only conversion is the inverse to ``c2w``.
Intrinsics are in pixels with the same continuous pixel convention as ours (the top-left image
corner is (0, 0), the first pixel's centre (0.5, 0.5)), so focal lengths and the principal point
go into K unchanged; the remaining parameters go into the distortion dict under OpenCV names.

Supported camera models (all pinhole plus OpenCV-style distortion): SIMPLE_PINHOLE, PINHOLE,
SIMPLE_RADIAL (its ``k`` is stored as ``k1``), RADIAL, OPENCV, FULL_OPENCV. Fisheye and other
models are refused with a message: undistort with ``colmap image_undistorter`` first.

Where the model is found (``find_colmap_model``): the folder given if it holds cameras.{bin,txt}
and images.{bin,txt}; else its ``sparse/0``; else its ``sparse``. A file inside a model folder
(e.g. ``cameras.bin``) names that folder.

Where the images are (``colmap_image_dir``): the dataset root is the folder above ``sparse`` for
``<root>/sparse/<n>`` and ``<root>/sparse`` models, else the model folder's parent. Image names
resolve against ``<root>/images`` when that folder exists, else against ``<root>`` itself.

Frames are ordered by image name; unregistered images (no pose) are left out. The world frame and
units are the model's, unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from recon.io.camera_set import CameraSet, View, build_camera_set
from renderer.errors import FileFormatError

# Parameter names per model, in COLMAP's order; f/fx/fy/cx/cy go to K, the rest to distortion.
MODEL_PARAMS = {
    "SIMPLE_PINHOLE": ("f", "cx", "cy"),
    "PINHOLE": ("fx", "fy", "cx", "cy"),
    "SIMPLE_RADIAL": ("f", "cx", "cy", "k1"),
    "RADIAL": ("f", "cx", "cy", "k1", "k2"),
    "OPENCV": ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2"),
    "FULL_OPENCV": ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2", "k3", "k4", "k5", "k6"),
}
MODEL_FILES = ("cameras.bin", "cameras.txt", "images.bin", "images.txt", "points3D.bin", "points3D.txt",
               "rigs.bin", "rigs.txt", "frames.bin", "frames.txt")


def is_colmap_model(folder: Path) -> bool:
    """True if ``folder`` holds a camera file and an image file of a COLMAP model."""
    return folder.is_dir() and any((folder / f"cameras.{e}").is_file() for e in ("bin", "txt")) and any(
        (folder / f"images.{e}").is_file() for e in ("bin", "txt")
    )


def find_colmap_model(path: Path) -> Path | None:
    """The model folder for ``path`` (a model folder, a file in one, or a dataset folder), or None."""
    path = Path(path)
    if path.is_file() and path.name in MODEL_FILES:
        path = path.parent
    for candidate in (path, path / "sparse" / "0", path / "sparse"):
        if is_colmap_model(candidate):
            return candidate
    return None


def colmap_image_dir(model_dir: Path) -> Path:
    """The folder that COLMAP image names are relative to (rule in the module docstring)."""
    if model_dir.parent.name == "sparse":
        root = model_dir.parent.parent
    elif model_dir.name == "sparse":
        root = model_dir.parent
    else:
        root = model_dir.parent
    return root / "images" if (root / "images").is_dir() else root


def read_colmap(
    path: str | Path,  # model folder, a file inside one, or a dataset folder with sparse/0 or sparse
    *,
    views: Sequence[View] | None = None,  # keep only these frames (indices or image names)
    dtype: torch.dtype = torch.float32,
) -> CameraSet:
    """Read a COLMAP sparse model into OpenCV cameras, one per registered image, sorted by name.

    Returns a ``CameraSet``: c2w [N,4,4] in the model's world frame, K [N,3,3] in pixels,
    distortion per frame (OpenCV names), ``source="colmap"``.
    """
    path = Path(path)
    if not path.exists():
        raise FileFormatError(path, "no such file or folder")
    model_dir = find_colmap_model(path)
    if model_dir is None:
        raise FileFormatError(
            path, "no COLMAP model: expected cameras.bin/.txt and images.bin/.txt here, in sparse/0 or in sparse"
        )
    import pycolmap  # lazy: heavy native module, only needed for this format

    try:
        rec = pycolmap.Reconstruction(str(model_dir))
    except Exception as e:  # pycolmap reports parse failures as ValueError/RuntimeError
        raise FileFormatError(model_dir, f"cannot read the COLMAP model: {e}") from None
    images = sorted((im for im in rec.images.values() if _value(im.has_pose)), key=lambda im: im.name)
    if not images:
        raise FileFormatError(model_dir, "the COLMAP model has no registered images")

    image_dir = colmap_image_dir(model_dir)
    c2w, K, sizes, image_paths, distortion = [], [], [], [], []
    for im in images:
        cam = rec.cameras[im.camera_id]
        pose, k, dist = image_camera(rec, im, model_dir)
        c2w.append(pose)
        K.append(k)
        sizes.append((int(cam.width), int(cam.height)))
        image_paths.append(image_dir / im.name)
        distortion.append(dist)
    return build_camera_set(model_dir, "colmap", np.stack(c2w), np.stack(K), sizes, image_paths, distortion, views=views, dtype=dtype)


def image_camera(rec, image, where: Path) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """``(c2w [4,4], K [3,3], distortion)`` of a registered image of a pycolmap Reconstruction.

    ``c2w`` is the inverse of COLMAP's ``cam_from_world`` (OpenCV axes, the model's world and
    units); ``K`` is in pixels of the camera's width x height; ``where`` names the model in errors.
    """
    k, dist = _intrinsics(rec.cameras[image.camera_id], where, image.name)
    w2c = np.eye(4)
    w2c[:3, :4] = np.asarray(_value(image.cam_from_world).matrix(), dtype=np.float64)
    return _rigid_inverse(w2c), k, dist


def _value(attr):
    """pycolmap exposes some fields as properties in one version and methods in another."""
    return attr() if callable(attr) else attr


def _rigid_inverse(T: np.ndarray) -> np.ndarray:
    """Inverse of a rigid 4x4 transform (R^T, -R^T t); not-quite-rotations are left for validation."""
    out = np.eye(4)
    out[:3, :3] = T[:3, :3].T
    out[:3, 3] = -T[:3, :3].T @ T[:3, 3]
    return out


def _intrinsics(cam, model_dir: Path, image_name: str) -> tuple[np.ndarray, dict[str, float]]:
    """``(K [3,3], distortion)`` of a pycolmap camera."""
    model = str(cam.model_name)
    names = MODEL_PARAMS.get(model)
    if names is None:
        raise FileFormatError(
            model_dir,
            f"camera {cam.camera_id} (image {image_name}) uses the {model} model, which is not supported "
            f"(supported: {', '.join(MODEL_PARAMS)}): undistort with colmap image_undistorter first",
        )
    params = [float(v) for v in np.asarray(cam.params).ravel()]
    if len(params) != len(names):
        raise FileFormatError(model_dir, f"camera {cam.camera_id} ({model}) has {len(params)} parameters, expected {len(names)}")
    p = dict(zip(names, params))
    fx = p.get("fx", p.get("f"))
    fy = p.get("fy", p.get("f"))
    K = np.array([[fx, 0.0, p["cx"]], [0.0, fy, p["cy"]], [0.0, 0.0, 1.0]])
    dist = {k: v for k, v in p.items() if k not in ("f", "fx", "fy", "cx", "cy")}
    return K, dist
