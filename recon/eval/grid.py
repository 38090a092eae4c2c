"""Result image grid: one row per target view, columns GT | prediction | error heatmap, labelled.

The error column maps the per-pixel mean absolute RGB error through an inferno-like colour ramp
on the fixed range [0, ERROR_MAX], so grids of different methods can be compared by eye.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor

from recon.eval.imaging import area_resize
from renderer.io.atomic import atomic_output

ERROR_MAX = 0.25  # mean |RGB error| shown at the top of the colour ramp
CELL_MAX = 256  # longest side of a cell in pixels (images are area-downsampled to fit)
LABEL_H = 14  # height of the text strip above each row

# (position, RGB) anchors of an inferno-like ramp.
_RAMP = np.array([[0.0, 0, 0, 4], [0.25, 87, 16, 110], [0.5, 188, 55, 84], [0.75, 249, 142, 9], [1.0, 252, 255, 164]])


@dataclass
class GridRow:
    label: str  # e.g. "lego / test/r_0.png  PSNR 21.3"
    target: Tensor  # [H, W, 3] in [0, 1]
    prediction: Tensor  # [H, W, 3] in [0, 1]


def error_heatmap(prediction: Tensor, target: Tensor, vmax: float = ERROR_MAX) -> np.ndarray:
    """``[H, W, 3]`` uint8 colour map of the mean absolute RGB error clipped to [0, vmax]."""
    err = (prediction.float().clamp(0, 1) - target.float().clamp(0, 1)).abs().mean(-1).numpy()
    t = np.clip(err / vmax, 0.0, 1.0)
    rgb = np.stack([np.interp(t, _RAMP[:, 0], _RAMP[:, c]) for c in (1, 2, 3)], axis=-1)
    return (rgb + 0.5).astype(np.uint8)


def _fit(image: np.ndarray, cell_max: int) -> np.ndarray:
    h, w = image.shape[:2]
    s = min(1.0, cell_max / max(h, w))
    if s == 1.0:
        return image
    t = torch.from_numpy(image.astype(np.float32) / 255.0)
    small = area_resize(t, max(1, round(w * s)), max(1, round(h * s)))
    return (small.numpy() * 255.0 + 0.5).astype(np.uint8)


def _u8(image: Tensor) -> np.ndarray:
    return (image.detach().float().cpu().clamp(0, 1).numpy() * 255.0 + 0.5).astype(np.uint8)


def make_grid(rows: list[GridRow], cell_max: int = CELL_MAX) -> np.ndarray:
    """``[H, W, 3]`` uint8 grid: per row a label strip, then GT | prediction | error side by side."""

    if not rows:
        raise ValueError("no rows for the grid")
    blocks = []
    for row in rows:
        cells = [_fit(_u8(row.target), cell_max), _fit(_u8(row.prediction), cell_max),
                 _fit(error_heatmap(row.prediction.cpu(), row.target.cpu()), cell_max)]
        blocks.append((row.label, np.concatenate(cells, axis=1)))
    width = max(b.shape[1] for _, b in blocks)
    canvas = Image.new("RGB", (width, sum(b.shape[0] + LABEL_H for _, b in blocks) + LABEL_H), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    cell_w = blocks[0][1].shape[1] // 3
    for i, title in enumerate(("ground truth", "prediction", f"|error| 0..{ERROR_MAX:g}")):
        draw.text((i * cell_w + 3, 1), title, fill=(0, 0, 0))
    y = LABEL_H
    for label, block in blocks:
        draw.text((3, y + 1), label, fill=(0, 0, 0))
        canvas.paste(Image.fromarray(block), (0, y + LABEL_H))
        y += LABEL_H + block.shape[0]
    return np.asarray(canvas)


def write_grid(path: Path, rows: list[GridRow], cell_max: int = CELL_MAX) -> Path:
    """Write ``make_grid(rows)`` as a PNG, atomically."""

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    Image.fromarray(make_grid(rows, cell_max)).save(buf, format="PNG")
    with atomic_output(Path(path)) as f:
        f.write(buf.getvalue())
    return Path(path)
