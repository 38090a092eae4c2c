"""Working sizes and resizing: one rule for every path that feeds the model or compares with it.

Images are ``[V, H, W, 3]`` float in [0, 1], channels last; masks ``[V, H, W]`` or ``[V, H, W, 1]``.
A resize of images goes with ``Cameras.resize`` of their cameras, so that K stays exact.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor

from renderer import Cameras


def model_input_size(width: int, height: int, long_side: int, multiple: int) -> tuple[int, int]:
    """Working size ``(w, h)``: the long side scaled to ``long_side``, both sides rounded half up to
    multiples of ``multiple`` (at least one multiple). The pipeline's preprocessing uses the same."""
    if multiple < 1 or long_side < multiple:
        raise ValueError(f"need long_side >= multiple >= 1, got {long_side} and {multiple}")
    s = long_side / max(width, height)
    return tuple(max(multiple, math.floor(v * s / multiple + 0.5) * multiple) for v in (width, height))


def resize_images(images: Tensor, width: int, height: int) -> Tensor:
    """Area-style (antialiased bilinear) resize of ``images [V, H, W, 3]`` in [0, 1]."""
    if tuple(images.shape[1:3]) == (height, width):
        return images
    x = F.interpolate(images.permute(0, 3, 1, 2).float(), size=(height, width), mode="bilinear",
                      antialias=True, align_corners=False)
    return x.permute(0, 2, 3, 1).clamp(0, 1)


def resize_masks(masks: Tensor, width: int, height: int) -> Tensor:
    """``masks [V, H, W]`` or ``[V, H, W, 1]`` in [0, 1] -> ``[V, height, width]``, resized exactly
    as ``resize_images`` resizes the images, so mask and image pixels stay aligned."""
    return resize_images((masks if masks.ndim == 4 else masks[..., None]).float(), width, height)[..., 0]


def resize_views(images: Tensor, cameras: Cameras, width: int, height: int) -> tuple[Tensor, Cameras]:
    """``resize_images`` of ``images [V, H, W, 3]``; K scales exactly with the image."""
    if (cameras.width, cameras.height) == (width, height):
        return images, cameras
    return resize_images(images, width, height), cameras.resize(width, height)
