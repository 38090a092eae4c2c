"""Camera file readers: every outside convention becomes ``renderer.cameras.Cameras`` here.

``read_cameras(path)`` detects the format and returns a ``CameraSet`` (OpenCV axes, c2w in the
file's world frame and units, K in pixels, one image path per camera). Formats:

- ours ``cameras.json`` (``recon.io.cameras_json``),
- NeRF / Blender / instant-ngp ``transforms*.json`` (``recon.io.nerf``),
- COLMAP sparse models, text or binary (``recon.io.colmap``),
- LLFF ``poses_bounds.npy`` (``recon.io.llff``),
- DTU / IDR / NeuS ``cameras_sphere.npz`` / ``cameras.npz`` (``recon.io.idr``).

Detection of a file: ``*.json`` with "frames" and "convention" is ours; ``*.json`` with "frames"
whose first frame has "transform_matrix" is NeRF; ``poses_bounds.npy`` is LLFF; ``*.npz`` with
``world_mat_0`` is IDR; a file of a COLMAP model (cameras.bin, images.txt, ...) names its
folder. A folder is searched, in this order, for cameras.json, transforms.json,
transforms_train.json, poses_bounds.npy, cameras_sphere.npz, cameras.npz, then a COLMAP model
in sparse/0, sparse, or the folder itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from recon.io.camera_set import CameraSet, View, load_json
from recon.io.cameras_json import read_cameras_json, write_cameras_json
from recon.io.colmap import MODEL_FILES, find_colmap_model, read_colmap
from recon.io.idr import read_idr
from recon.io.llff import read_llff
from recon.io.nerf import read_nerf
from renderer.errors import FileFormatError

__all__ = [
    "CameraSet",
    "read_cameras",
    "read_cameras_json",
    "read_colmap",
    "read_idr",
    "read_llff",
    "read_nerf",
    "write_cameras_json",
]

NOT_A_CAMERA_FILE = (
    "not a camera file: expected transforms.json, a COLMAP sparse model, poses_bounds.npy, "
    "cameras_sphere.npz or cameras.json"
)
FOLDER_FILES = ("cameras.json", "transforms.json", "transforms_train.json", "poses_bounds.npy", "cameras_sphere.npz", "cameras.npz")


def read_cameras(
    path: str | Path,  # a camera file or a dataset folder
    views: Sequence[View] | None = None,  # keep only these frames (indices or image file names)
    image_size: tuple[int, int] | None = None,  # (width, height) of the images, for files that do not state it
) -> CameraSet:
    """Read any supported camera file (format detected as in the module docstring).

    ``image_size``: a camera file given apart from its images (NeRF without ``w``/``h``, IDR without
    an image folder) takes the size of the images the caller loaded instead of looking beside the file.

    Returns a ``CameraSet`` of C cameras: OpenCV c2w [C,4,4] in the file's world, K [C,3,3] in
    pixels. Raises ``FileFormatError`` / ``CameraError`` with a one-line message naming the file.
    """
    path = Path(path)
    if not path.exists():
        raise FileFormatError(path, "no such file or folder")
    if path.is_dir():
        for name in FOLDER_FILES:
            if (path / name).is_file():
                return _read_file(path / name, views, image_size)
        if find_colmap_model(path) is not None:
            return read_colmap(path, views=views)
        raise FileFormatError(path, NOT_A_CAMERA_FILE)
    return _read_file(path, views, image_size)


def _read_file(path: Path, views: Sequence[View] | None, image_size: tuple[int, int] | None = None) -> CameraSet:
    suffix = path.suffix.lower()
    if suffix == ".json":
        data = load_json(path)
        frames = data.get("frames")
        if isinstance(frames, list):
            if "convention" in data:
                return read_cameras_json(path, views=views)
            if frames and isinstance(frames[0], dict) and "transform_matrix" in frames[0]:
                return read_nerf(path, views=views, image_size=image_size)
    elif path.name == "poses_bounds.npy":
        return read_llff(path, views=views)
    elif suffix == ".npz" and _npz_has(path, "world_mat_0"):
        return read_idr(path, views=views, image_size=image_size)
    elif path.name in MODEL_FILES:
        return read_colmap(path.parent, views=views)
    raise FileFormatError(path, NOT_A_CAMERA_FILE)


def _npz_has(path: Path, key: str) -> bool:
    """True if the .npz archive lists ``key`` (reads the zip directory only)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return key in npz.files
    except Exception as e:
        raise FileFormatError(path, f"not a readable .npz archive: {e}") from None
