"""Image output: PNG/NPY written atomically (a complete file or none)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from renderer.errors import FileFormatError
from renderer.io.atomic import atomic_output


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """``[H, W, C]`` float in [0, 1] -> uint8 array (rounded, clamped)."""
    return (image.detach().float().clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).cpu().numpy()


def write_png(path: str | Path, image: torch.Tensor) -> None:
    """Write ``image [H, W, 3|4]`` float in [0, 1] as an 8-bit RGB/RGBA PNG, atomically."""
    array = to_uint8(image)
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    with atomic_output(Path(path)) as f:
        f.write(buf.getvalue())


def write_npy(path: str | Path, array: torch.Tensor) -> None:
    """Write a tensor as float32 ``.npy``, atomically."""
    buf = io.BytesIO()
    np.save(buf, array.detach().float().cpu().numpy())
    with atomic_output(Path(path)) as f:
        f.write(buf.getvalue())


def load_image(path: str | Path) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Read an image file as ``(rgb [H, W, 3] float32 in [0, 1], alpha [H, W, 1] or None)``.

    8/16-bit, grayscale, palette and RGBA files are all converted; pixels are taken as stored
    (no EXIF rotation: dataset poses refer to the stored pixel grid). Raises ``FileFormatError``.
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float32) / 65535.0
                rgb = np.repeat(arr[..., None], 3, axis=-1)
                return torch.from_numpy(np.ascontiguousarray(rgb)), None
            arr = np.asarray(im.convert("RGBA" if has_alpha else "RGB"), dtype=np.float32) / 255.0
    except FileNotFoundError:
        raise FileFormatError(path, "image file not found") from None
    except (OSError, ValueError) as e:
        raise FileFormatError(path, f"cannot read image: {e}") from None
    t = torch.from_numpy(np.ascontiguousarray(arr))
    return (t[..., :3], t[..., 3:4]) if has_alpha else (t, None)


def resize_image(image: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Area-style (antialiased) resize of ``[H, W, C]`` to ``[height, width, C]``."""
    if image.shape[0] == height and image.shape[1] == width:
        return image
    x = image.permute(2, 0, 1)[None]
    y = torch.nn.functional.interpolate(x, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    return y[0].permute(1, 2, 0).clamp(0, 1)
