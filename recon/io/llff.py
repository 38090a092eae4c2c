"""LLFF ``poses_bounds.npy`` reader.

The file's convention: an ``[N, 17]`` float array, one row per image in sorted file-name order.
The first 15 numbers are a 3x5 matrix (row-major): columns 0-2 are the camera's axes in world
coordinates in LLFF's order ``[down, right, backwards]``, column 3 the camera centre, column 4
``[height, width, focal]`` in pixels of the full-resolution images. The last two numbers are the
scene's near and far depth bounds (world units).

Conversion to OpenCV axes (x right, y down, z forward): ``x = col1``, ``y = col0``, ``z = -col2``.
The principal point is the image centre.

Images: the ``images`` folder beside the file (another, e.g. ``images_4``, by argument). When it
exists it must hold one image per row, and its resolution wins: focal lengths and the principal
point are scaled from the file's ``h, w`` to the actual images (LLFF ships downsampled copies).
Without the folder the file's ``h, w`` are used and the image paths are placeholders
``images/000, images/001, ...`` (no extension).

World: kept as stored. LLFF's own loader recentres the poses and rescales by the near bound
(``bd_factor``); we do neither, so ``near_far`` stays in the file's world units.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from recon.io.camera_set import (
    CameraSet,
    View,
    as_size,
    build_camera_set,
    list_images,
    read_image_size,
)
from renderer.errors import FileFormatError

ASPECT_TOLERANCE = 0.01  # relative: downsampling rounds sizes to whole pixels


def read_llff(
    path: str | Path,  # poses_bounds.npy, or the folder holding it
    *,
    images: str = "images",  # image folder beside the file whose resolution K is expressed in
    views: Sequence[View] | None = None,  # keep only these frames (indices or image names)
    dtype: torch.dtype = torch.float32,
) -> CameraSet:
    """Read ``poses_bounds.npy`` into OpenCV cameras in the file's world frame.

    Returns a ``CameraSet``: c2w [N,4,4], K [N,3,3] in pixels of the images folder (or of the
    file's h, w), ``near_far [N, 2]`` world units, ``source="llff"``.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "poses_bounds.npy"
    if not path.is_file():
        raise FileFormatError(path, "no such file")
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as e:  # ValueError for pickles / bad headers, OSError for truncated files
        raise FileFormatError(path, f"not a readable .npy array: {e}") from None
    if not isinstance(arr, np.ndarray) or arr.ndim != 2 or arr.shape[1] != 17 or not np.issubdtype(arr.dtype, np.number):
        shape = "x".join(map(str, getattr(arr, "shape", ()))) or "a scalar"
        raise FileFormatError(path, f"expected an N x 17 array (3x5 pose + near, far per image), got {shape}")
    n = arr.shape[0]
    if n == 0:
        raise FileFormatError(path, "holds no cameras")
    arr = arr.astype(np.float64)
    poses = arr[:, :15].reshape(n, 3, 5)
    near_far = arr[:, 15:17]

    c2w = np.tile(np.eye(4), (n, 1, 1))
    c2w[:, :3, 0] = poses[:, :, 1]  # right
    c2w[:, :3, 1] = poses[:, :, 0]  # down
    c2w[:, :3, 2] = -poses[:, :, 2]  # forward = -backwards
    c2w[:, :3, 3] = poses[:, :, 3]
    for i in range(n):
        near, far = near_far[i]
        if not (np.isfinite(near) and np.isfinite(far) and 0 < near <= far):
            raise FileFormatError(path, f"row {i} bounds must satisfy 0 < near <= far, got near {near}, far {far}")
    file_sizes = [
        (as_size(poses[i, 1, 4], f"row {i} width", path), as_size(poses[i, 0, 4], f"row {i} height", path)) for i in range(n)
    ]
    focal = poses[:, 2, 4]

    image_dir = path.parent / images
    if image_dir.is_dir():
        files = list_images(image_dir)
        if len(files) != n:
            raise FileFormatError(path, f"has {n} poses but {image_dir} holds {len(files)} images")
        actual = read_image_size(files[0], path)
        sizes = [actual] * n
        image_paths = files
    else:
        sizes, image_paths = file_sizes, [image_dir / f"{i:03d}" for i in range(n)]

    K = np.zeros((n, 3, 3))
    for i, ((w0, h0), (w, h)) in enumerate(zip(file_sizes, sizes)):
        sx, sy = w / w0, h / h0
        if abs(sx - sy) > ASPECT_TOLERANCE * max(sx, sy):
            raise FileFormatError(
                path, f"row {i} says the images are {w0}x{h0} but {image_dir} holds {w}x{h} images (different aspect ratio)"
            )
        K[i] = [[focal[i] * sx, 0.0, w / 2], [0.0, focal[i] * sy, h / 2], [0.0, 0.0, 1.0]]
    return build_camera_set(path, "llff", c2w, K, sizes, image_paths, near_far=near_far, views=views, dtype=dtype)
