"""Gaussians to and from ``.splat``, the 32-bytes-per-splat layout of antimatter15's WebGL viewer.

No header; each splat is 32 little-endian bytes::

    position  3 x float32  world units
    scale     3 x float32  activated (linear) world units
    colour    4 x uint8    R, G, B = round(clip(0.5 + SH_C0 * f_dc, 0, 1) * 255), A = round(opacity * 255)
    rotation  4 x uint8    unit quaternion (w, x, y, z) as clip(round(q * 128 + 128), 0, 255)

Conventions:
- "round" is round-half-up (``floor(x + 0.5)``), like JavaScript's ``Math.round`` in the viewer.
- Splats are written in descending order of importance ``opacity * scale_0 * scale_1 * scale_2``,
  as the viewer's own converter does (it sorts by ``exp(sum of log scales) * sigmoid(logit)``), so
  that a progressively loading viewer shows the biggest, most opaque splats first. Ties keep the
  input order. Reading therefore returns the splats in file order, not in the order written.
- Only the view-independent (DC) colour is stored: higher SH bands are dropped, and colours outside
  [0, 1] are clipped. ``read_splat`` returns degree-0 Gaussians.
- On read, ``f_dc = (RGB / 255 - 0.5) / SH_C0`` and ``opacity = A / 255``, except that A = 0 and
  A = 255 are read as the middle of their rounding bins (0.25/255 and 1 - 0.25/255): opacities stay
  in the open interval (0, 1) and writing them again gives the same bytes. Quaternions come back as
  ``(byte - 128) / 128``, normalised.

Both directions stream in chunks of about ``CHUNK_BYTES`` and writes are atomic (see ``ply.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from renderer.errors import FileFormatError
from renderer.gaussians import Gaussians
from renderer.io.atomic import atomic_output
from renderer.io.ply import CHUNK_BYTES, checked_for_export, open_for_reading
from renderer.sh import SH_C0

SPLAT_DTYPE = np.dtype([("position", "<f4", (3,)), ("scale", "<f4", (3,)), ("rgba", "u1", (4,)), ("rot", "u1", (4,))])
OPACITY_EDGE = 0.25 / 255  # A = 0 reads as this, A = 255 as 1 - this: the middle of the end bins


def splat_importance(opacities: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """[N] float64 sort key ``opacity * prod(scales)`` of opacities [N] and scales [N, 3]."""
    return opacities.astype(np.float64) * scales.astype(np.float64).prod(axis=1)


def _to_byte(x: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(x + 0.5), 0, 255).astype(np.uint8)


def _pack(means, scales, dc, opacities, quats_wxyz) -> np.ndarray:
    """[M] SPLAT_DTYPE records from float32 arrays [M,3], [M,3], [M,3] (SH DC), [M], [M,4]."""
    out = np.empty(len(means), SPLAT_DTYPE)
    out["position"] = means
    out["scale"] = scales
    rgb = np.clip(0.5 + SH_C0 * dc.astype(np.float64), 0.0, 1.0)
    out["rgba"][:, :3] = _to_byte(rgb * 255)
    out["rgba"][:, 3] = _to_byte(opacities.astype(np.float64) * 255)
    q = quats_wxyz.astype(np.float64)
    q /= np.sqrt((q * q).sum(axis=1, keepdims=True))
    out["rot"] = _to_byte(q * 128 + 128)
    return out


def write_splat(path: str | os.PathLike, gaussians: Gaussians, *, chunk_rows: int | None = None) -> None:
    """Write ``gaussians`` (N splats, any device/dtype) to a ``.splat`` file of 32 * N bytes.

    Raises ``FileFormatError`` naming ``path`` for bad shapes, non-finite or out-of-range values, or
    an unwritable destination; ``path`` is then left as it was.
    """
    path = Path(path)
    g = checked_for_export(gaussians, path)
    means, scales, opacities = g.means.numpy(), g.scales.numpy(), g.opacities.numpy()
    quats, dc = g.quats_wxyz.numpy(), g.sh[:, 0, :].numpy()
    order = np.argsort(-splat_importance(opacities, scales), kind="stable")
    rows = chunk_rows or CHUNK_BYTES // SPLAT_DTYPE.itemsize
    with atomic_output(path) as f:
        for i in range(0, len(g), rows):
            idx = order[i : i + rows]
            f.write(_pack(means[idx], scales[idx], dc[idx], opacities[idx], quats[idx]).data)


def _unpack(rec: np.ndarray, path: Path, first_row: int) -> dict[str, np.ndarray]:
    """Activated float32 arrays keyed like ``Gaussians`` fields from [M] SPLAT_DTYPE records."""
    means, scales = rec["position"].astype(np.float32), rec["scale"].astype(np.float32)
    for name, a in (("position", means), ("scale", scales)):
        bad = ~np.isfinite(a).all(axis=1)
        if bad.any():
            raise FileFormatError(path, f"non-finite {name} at splat {first_row + int(np.argmax(bad))}")
    bad = ~(scales > 0).all(axis=1)
    if bad.any():
        raise FileFormatError(path, f"non-positive scale at splat {first_row + int(np.argmax(bad))}")
    q = (rec["rot"].astype(np.float64) - 128.0) / 128.0
    norm = np.sqrt((q * q).sum(axis=1, keepdims=True))
    if (norm == 0).any():
        raise FileFormatError(path, f"zero-length rotation quaternion at splat {first_row + int(np.argmax(norm == 0))}")
    rgba = rec["rgba"].astype(np.float64) / 255.0
    return {
        "means": means,
        "quats_wxyz": (q / norm).astype(np.float32),
        "scales": scales,
        "opacities": np.clip(rgba[:, 3], OPACITY_EDGE, 1.0 - OPACITY_EDGE).astype(np.float32),
        "sh": ((rgba[:, None, :3] - 0.5) / SH_C0).astype(np.float32),
    }


def read_splat(path: str | os.PathLike, *, chunk_rows: int | None = None) -> Gaussians:
    """Read a ``.splat`` file into degree-0 float32 CPU ``Gaussians``, in file order.

    Raises ``FileFormatError`` naming ``path`` with a one-line reason for anything unreadable.
    """
    path = Path(path)
    with open_for_reading(path) as f:
        size = os.fstat(f.fileno()).st_size
        if size % SPLAT_DTYPE.itemsize:
            raise FileFormatError(path, f"size {size} bytes is not a multiple of 32 (not a .splat file)")
        n = size // SPLAT_DTYPE.itemsize
        out = {
            "means": np.empty((n, 3), np.float32),
            "quats_wxyz": np.empty((n, 4), np.float32),
            "scales": np.empty((n, 3), np.float32),
            "opacities": np.empty((n,), np.float32),
            "sh": np.empty((n, 1, 3), np.float32),
        }
        rows = chunk_rows or CHUNK_BYTES // SPLAT_DTYPE.itemsize
        for start in range(0, n, rows):
            rec = np.empty(min(rows, n - start), SPLAT_DTYPE)
            if f.readinto(memoryview(rec.view(np.uint8))) != rec.nbytes:
                raise FileFormatError(path, "truncated while reading (file changed?)")
            for name, a in _unpack(rec, path, start).items():
                out[name][start : start + len(rec)] = a
    return Gaussians(**{name: torch.from_numpy(a) for name, a in out.items()})
