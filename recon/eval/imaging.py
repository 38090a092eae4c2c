"""Image preparation for the real-data protocols: load, composite, undistort, downsample, cache.

Pixel convention as in ``renderer.cameras``: pixel (i, j) covers [j, j+1) x [i, i+1), its centre
is (j + 0.5, i + 0.5) in the continuous coordinates ``K`` maps to. Images are float32 [H, W, C]
in [0, 1], channels last.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from recon.io.images import load_image

# OpenCV's distortion model, in the names the files use. k4..k6 are the rational model's
# denominator terms (absent in instant-ngp's pinhole files; accepted for completeness).
OPENCV_KEYS = ("k1", "k2", "k3", "k4", "k5", "k6", "p1", "p2")


def area_resize(image: Tensor, width: int, height: int) -> Tensor:
    """Resize ``[H, W, C]`` to ``[height, width, C]``; shrinking averages whole source areas.

    Downsampling uses ``F.interpolate(mode="area")`` (an exact box filter for integer factors,
    e.g. 800 -> 400 averages 2x2 blocks); enlarging, or a mixed resize, uses antialiased bilinear.
    """
    H, W = image.shape[:2]
    if (H, W) == (height, width):
        return image
    x = image.permute(2, 0, 1)[None].float()
    if height <= H and width <= W:
        y = F.interpolate(x, size=(height, width), mode="area")
    else:
        y = F.interpolate(x, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    return y[0].permute(1, 2, 0).clamp(0, 1).contiguous()


def distort_normalized(x: Tensor, y: Tensor, coeffs: dict[str, float]) -> tuple[Tensor, Tensor]:
    """OpenCV distortion of normalised pinhole coordinates ``(x, y) = ((u - cx)/fx, (v - cy)/fy)``.

    ``x_d = x * radial + 2 p1 x y + p2 (r^2 + 2 x^2)``, ``y_d = y * radial + p1 (r^2 + 2 y^2) + 2 p2 x y``
    with ``radial = (1 + k1 r^2 + k2 r^4 + k3 r^6) / (1 + k4 r^2 + k5 r^4 + k6 r^6)``.
    """
    unknown = set(coeffs) - set(OPENCV_KEYS)
    if unknown:
        raise ValueError(f"unsupported distortion coefficients {sorted(unknown)} (OpenCV model: {OPENCV_KEYS})")
    k = {name: float(coeffs.get(name, 0.0)) for name in OPENCV_KEYS}
    r2 = x * x + y * y
    radial = (1 + r2 * (k["k1"] + r2 * (k["k2"] + r2 * k["k3"]))) / (1 + r2 * (k["k4"] + r2 * (k["k5"] + r2 * k["k6"])))
    xd = x * radial + 2 * k["p1"] * x * y + k["p2"] * (r2 + 2 * x * x)
    yd = y * radial + k["p1"] * (r2 + 2 * y * y) + 2 * k["p2"] * x * y
    return xd, yd


def undistort_image(image: Tensor, K: Tensor, coeffs: dict[str, float]) -> tuple[Tensor, float]:
    """Resample a distorted photo ``[H, W, C]`` onto the ideal pinhole camera with the same ``K [3, 3]``.

    For every output pixel centre the ideal ray is distorted with ``coeffs`` (OpenCV model) and the
    source photo is sampled there bilinearly (what ``cv2.undistort(img, K, dist)`` does, in our
    pixel-centre convention). Output pixels whose source falls outside the photo repeat the nearest
    border pixel. Returns ``(image [H, W, C], fraction of output pixels with an in-bounds source)``.
    """
    if not any(float(v) != 0.0 for v in coeffs.values()):
        return image, 1.0
    H, W = image.shape[:2]
    K = K.double()
    key = (H, W, tuple(float(v) for v in K.flatten()), tuple(sorted((k, float(v)) for k, v in coeffs.items())))
    grid, inside = _undistortion_grid(*key)
    x = image.permute(2, 0, 1)[None].float()
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out[0].permute(1, 2, 0).clamp(0, 1).contiguous(), inside


@functools.lru_cache(maxsize=4)
def _undistortion_grid(H: int, W: int, K: tuple, coeffs: tuple) -> tuple[Tensor, float]:
    """``(grid [1, H, W, 2] for grid_sample, in-bounds fraction)``; cached (a rig shares one camera)."""
    fx, cx, fy, cy = K[0], K[2], K[4], K[5]
    v, u = torch.meshgrid(torch.arange(H, dtype=torch.float64) + 0.5, torch.arange(W, dtype=torch.float64) + 0.5, indexing="ij")
    xd, yd = distort_normalized((u - cx) / fx, (v - cy) / fy, dict(coeffs))
    us, vs = fx * xd + cx, fy * yd + cy  # source positions, continuous pixel coordinates
    inside = float(((us >= 0) & (us <= W) & (vs >= 0) & (vs <= H)).double().mean())
    grid = torch.stack([2 * us / W - 1, 2 * vs / H - 1], dim=-1)[None].to(torch.float32)
    return grid, inside


@functools.lru_cache(maxsize=48)
def _load_view_cached(
    path: str, width: int, height: int, background: tuple | None, K: tuple | None, distortion: tuple
) -> tuple[Tensor, Tensor | None]:
    rgb, alpha = load_image(path)
    if alpha is not None and background is not None:
        rgb = rgb * alpha + (1.0 - alpha) * torch.tensor(background, dtype=rgb.dtype)
    coeffs = dict(distortion)
    if coeffs and any(v != 0.0 for v in coeffs.values()):
        rgb, _ = undistort_image(rgb, torch.tensor(K, dtype=torch.float64).reshape(3, 3), coeffs)
        if alpha is not None:
            alpha, _ = undistort_image(alpha, torch.tensor(K, dtype=torch.float64).reshape(3, 3), coeffs)
    rgb = area_resize(rgb, width, height)
    alpha = None if alpha is None else area_resize(alpha, width, height)
    return rgb, alpha


def load_view(
    path: Path,  # image file (PNG/JPG; RGBA keeps its alpha)
    width: int,  # output size in pixels
    height: int,
    background: tuple[float, float, float] | None = None,  # composite RGBA over this colour first
    K: Tensor | None = None,  # [3, 3] intrinsics of the stored image, needed when distortion is given
    distortion: dict[str, float] | None = None,  # OpenCV coefficients of the stored image
) -> tuple[Tensor, Tensor | None]:
    """One prepared view: ``(rgb [height, width, 3], alpha [height, width, 1] or None)``.

    Order of operations: decode at full size, composite over ``background``, undistort to the
    pinhole ``K`` (full resolution), then area-downsample. Results are cached per process (the
    eval protocols reload the same views often); treat the returned tensors as read-only.
    """
    dist = tuple(sorted((k, float(v)) for k, v in (distortion or {}).items()))
    if dist and K is None:
        raise ValueError("undistortion needs the image's K")
    k_key = None if K is None else tuple(float(v) for v in K.double().flatten())
    bg = None if background is None else tuple(float(c) for c in background)
    return _load_view_cached(str(path), int(width), int(height), bg, k_key, dist)
