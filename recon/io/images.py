"""Image output: PNG/NPY written atomically (a complete file or none)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from renderer.io.atomic import atomic_output


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """``[H, W, C]`` float in [0, 1] -> uint8 array (rounded, clamped)."""
    return (image.detach().float().clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).cpu().numpy()


def write_png(path: str | Path, image: torch.Tensor) -> None:
    """Write ``image [H, W, 3|4]`` float in [0, 1] as an 8-bit RGB/RGBA PNG, atomically."""
    array = to_uint8(image)
    buf = io.BytesIO()
    Image.fromarray(array, mode="RGBA" if array.shape[-1] == 4 else "RGB").save(buf, format="PNG")
    with atomic_output(Path(path)) as f:
        f.write(buf.getvalue())


def write_npy(path: str | Path, array: torch.Tensor) -> None:
    """Write a tensor as float32 ``.npy``, atomically."""
    buf = io.BytesIO()
    np.save(buf, array.detach().float().cpu().numpy())
    with atomic_output(Path(path)) as f:
        f.write(buf.getvalue())
