"""DTU / IDR / NeuS ``cameras_sphere.npz`` (or ``cameras.npz``) reader.

The file's convention: for each image i, ``world_mat_i`` is a 4x4 (or 3x4) projection
``P = K [R | t]`` from world to pixels, defined up to scale, and ``scale_mat_i`` (optional,
4x4) maps the normalised world, in which the object fits in the unit sphere, to that world.
``P_i = world_mat_i @ scale_mat_i`` thus projects the normalised world to pixels.

Conversion: ``P[:3, :3] = K R`` is split by an RQ decomposition (as IDR's ``load_K_Rt_from_P``
does with OpenCV's ``decomposeProjectionMatrix``), signs are fixed so that K has a positive
diagonal and R is a proper rotation (P may carry any nonzero scale, negative included), K is
divided by ``K[2, 2]``, and the camera centre is ``-P[:3,:3]^-1 P[:3, 3]``. P's rows already
follow OpenCV axes (x right, y down, z forward).

World frame: the normalised one that ``scale_mat`` defines (unit sphere around the object), the
frame IDR and NeuS train in, so their meshes and ours line up. Without scale_mat: world_mat's.

Image size: the first image in the ``image`` (else ``images``) folder beside the file, which must
hold one image per camera; or the ``width`` / ``height`` arguments, which win when given. Image
paths are that folder's files in name order, else placeholders ``image/000, image/001, ...``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from recon.io.camera_set import (
    CameraSet,
    View,
    as_matrix,
    as_size,
    build_camera_set,
    list_images,
    read_image_size,
)
from renderer.errors import CameraError, FileFormatError

IDR_FILES = ("cameras_sphere.npz", "cameras.npz")


def rq3(M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RQ decomposition of a 3x3 matrix: ``M = U @ Q``, U upper triangular, Q orthogonal.

    Computed from numpy's QR of the row-reversed transpose (no scipy/OpenCV needed); signs are
    left to the caller.
    """
    flip = np.eye(3)[::-1]
    q, r = np.linalg.qr((flip @ M).T)
    return flip @ r.T @ flip, flip @ q.T


def decompose_projection(P: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(K [3,3], c2w [4,4])`` from a 3x4 projection ``P`` (any nonzero scale), or None if
    ``P[:3,:3]`` is singular. K has a positive diagonal and ``K[2,2] = 1``; c2w is OpenCV."""
    M, p4 = P[:, :3], P[:, 3]
    scale = np.abs(M).max()
    if not scale > 0 or abs(np.linalg.det(M / scale)) < 1e-12:
        return None
    K, R = rq3(M)
    signs = np.where(np.diag(K) < 0, -1.0, 1.0)
    K, R = K * signs[None, :], signs[:, None] * R  # K D and D R: D = D^-1 leaves K R unchanged
    if np.linalg.det(R) < 0:  # P was given with a negative scale: -P = K (-R) projects the same
        R = -R
    K = K / K[2, 2]
    c2w = np.eye(4)
    c2w[:3, :3] = R.T
    c2w[:3, 3] = -np.linalg.solve(M, p4)
    return K, c2w


def read_idr(
    path: str | Path,  # cameras_sphere.npz / cameras.npz, or the folder holding it
    *,
    width: int | None = None,  # image size P maps to, when there is no image folder
    height: int | None = None,
    views: Sequence[View] | None = None,  # keep only these frames (indices or image names)
    dtype: torch.dtype = torch.float32,
    image_folder: bool = True,  # False: ignore the image folder (it may hold a subset); needs width and height
    image_size: tuple[int, int] | None = None,  # (width, height) of the images when there is no image folder
) -> CameraSet:
    """Read IDR/NeuS cameras into OpenCV cameras in the normalised (unit-sphere) world.

    Returns a ``CameraSet``: c2w [N,4,4], K [N,3,3] in pixels, ``source="idr"``.
    """
    path = Path(path)
    if path.is_dir():
        path = next((path / n for n in IDR_FILES if (path / n).is_file()), path / IDR_FILES[0])
    if not path.is_file():
        raise FileFormatError(path, "no such file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {k: npz[k] for k in npz.files}
    except Exception as e:  # BadZipFile, ValueError for pickles, OSError for truncated files
        raise FileFormatError(path, f"not a readable .npz archive: {e}") from None

    ids = sorted(int(m.group(1)) for k in data if (m := re.fullmatch(r"world_mat_(\d+)", k)))
    if not ids:
        raise FileFormatError(path, "missing keys world_mat_0, world_mat_1, ...")
    if ids != list(range(len(ids))):
        missing = sorted(set(range(max(ids) + 1)) - set(ids))
        raise FileFormatError(path, f"world_mat_* must be numbered 0..{len(ids) - 1}: world_mat_{missing[0]} is missing")
    n = len(ids)
    has_scale = [f"scale_mat_{i}" in data for i in range(n)]
    if any(has_scale) and not all(has_scale):
        raise FileFormatError(path, f"scale_mat_{has_scale.index(False)} is missing while other cameras have one")

    c2w, K = [], []
    for i in range(n):
        world_mat = as_matrix(data[f"world_mat_{i}"], 4, 4, f"world_mat_{i}", path, allow_3x4=True)
        scale_mat = as_matrix(data[f"scale_mat_{i}"], 4, 4, f"scale_mat_{i}", path) if has_scale[i] else np.eye(4)
        P = (world_mat @ scale_mat)[:3, :4]
        if not np.isfinite(P).all():
            raise CameraError(f"{path}: camera {i} has NaN or infinite values")
        out = decompose_projection(P)
        if out is None:
            raise CameraError(f"{path}: camera {i} projection world_mat_{i} @ scale_mat_{i} is singular (not invertible)")
        K.append(out[0])
        c2w.append(out[1])

    image_dir = next((path.parent / d for d in ("image", "images") if (path.parent / d).is_dir()), None)
    image_dir = image_dir if image_folder else None
    files = list_images(image_dir) if image_dir is not None else []
    if image_dir is not None and len(files) != n:
        raise FileFormatError(path, f"has {n} cameras but {image_dir} holds {len(files)} images")
    if width is not None or height is not None:
        if width is None or height is None:
            raise FileFormatError(path, "give both width and height")
        size = (as_size(width, "width", path), as_size(height, "height", path))
    elif files:
        size = read_image_size(files[0], path)
    elif image_size is not None:
        size = (int(image_size[0]), int(image_size[1]))
    else:
        raise FileFormatError(path, "image size unknown: no image/ folder beside the file; pass width and height")
    image_paths = files or [path.parent / "image" / f"{i:03d}" for i in range(n)]
    return build_camera_set(path, "idr", np.stack(c2w), np.stack(K), [size] * n, image_paths, views=views, dtype=dtype)
