"""A dense SDF grid over an axis-aligned box, for fast conservative distance queries.

``SdfGrid.build(fn, lo, hi, res)`` samples a signed distance ``fn`` exactly at the nodes of a grid
with cubic cells of size ``h``. For a 1-Lipschitz ``f`` and trilinear weights ``w_c`` at corners
``c`` of the cell holding ``x``: ``f(x) >= sum_c w_c (f(c) - |x - c|) >= interp(x) - e(x)`` with
``e(x) = h * sqrt(sum_axes t (1 - t)) <= h * sqrt(3) / 2`` (Jensen on ``|x - c|``), and likewise
``f(x) <= interp(x) + e(x)``. ``lower_bound`` returns ``interp - e`` inside the box and, outside,
``sqrt(dist_box^2 + max(lower_bound(q), 0)^2)`` with ``q`` the nearest box point (the shape lies
in the box, and the projection onto a convex set makes an obtuse angle), so sphere tracing can
step by it safely. Interpolation uses gathers and basic ops only (see ``_ops``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class SdfGrid:
    values: Tensor  # [nx * ny * nz] float32, x-major (index = (i * ny + j) * nz + k)
    lo: tuple[float, float, float]  # world position of node (0, 0, 0)
    h: float  # cell size, world units
    shape: tuple[int, int, int]  # nodes per axis

    @property
    def hi(self) -> tuple[float, float, float]:
        return tuple(self.lo[a] + self.h * (self.shape[a] - 1) for a in range(3))

    @staticmethod
    def nodes(lo, hi, res: int, device=None) -> tuple[Tensor, tuple[float, float, float], float, tuple[int, int, int]]:
        """Node positions ``[N, 3]`` of a grid with ``res`` nodes along the longest side of [lo, hi]."""
        ext = [b - a for a, b in zip(lo, hi)]
        h = max(ext) / (res - 1)
        shape = tuple(max(2, math.ceil(e / h - 1e-6) + 1) for e in ext)
        cen = [(a + b) / 2 for a, b in zip(lo, hi)]
        lo = tuple(c - h * (n - 1) / 2 for c, n in zip(cen, shape))
        axes = [lo[a] + h * torch.arange(shape[a], dtype=torch.float32, device=device) for a in range(3)]
        pts = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
        return pts, lo, h, shape

    @classmethod
    def build(cls, fn: Callable[[Tensor], Tensor], lo, hi, res: int = 64, chunk: int = 1 << 18, device=None) -> SdfGrid:
        """Sample ``fn(points [P, 3]) -> [P]`` exactly on a grid covering [lo, hi] (``res`` nodes on the long side)."""
        pts, lo, h, shape = cls.nodes(lo, hi, res, device)
        vals = torch.cat([fn(pts[i : i + chunk]) for i in range(0, pts.shape[0], chunk)])
        return cls(vals, lo, h, shape)

    @classmethod
    def build_sparse(cls, fn: Callable[[Tensor], Tensor], lo, hi, res: int = 129, base_res: int = 33, band: float = 2.0,
                     chunk: int = 1 << 18, device=None) -> SdfGrid:
        """Like ``build`` but coarse to fine: the grid of ``base_res`` nodes is sampled exactly; each
        finer level (cells halved) evaluates ``fn`` only at nodes that may lie within ``band`` cells
        of the surface, and elsewhere stores the coarse level's lower bound ``interp - e``.

        Every stored value is a lower bound of the true SDF (exact near the surface), so the grid
        stays safe for ``lower_bound``; far from the surface its values are conservative. ``res``
        is rounded up to ``(base_res - 1) * 2^k + 1``.
        """
        levels = max(0, math.ceil(math.log2(max(res - 1, 1) / max(base_res - 1, 1)) - 1e-9))
        coarse = cls.build(fn, lo, hi, base_res, chunk, device)
        upper = coarse.values
        for _ in range(levels):
            shape = tuple(2 * n - 1 for n in coarse.shape)
            h = coarse.h / 2
            axes = [coarse.lo[a] + h * torch.arange(shape[a], dtype=torch.float32, device=device) for a in range(3)]
            pts = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
            lo_v, hi_v = [], []
            for i in range(0, pts.shape[0], chunk):
                x, y, z = pts[i : i + chunk].unbind(-1)
                v, e = coarse.interp_and_error(x, y, z)
                vu, _ = coarse.interp_and_error(x, y, z, upper)
                lo_v.append(v - e)
                hi_v.append(vu + e)
            lower, upper = torch.cat(lo_v), torch.cat(hi_v)
            near = ((lower < band * h) & (upper > -band * h)).nonzero()[:, 0]
            exact = torch.cat([fn(pts[near[i : i + chunk]]) for i in range(0, near.numel(), chunk)]) if near.numel() else lower[:0]
            lower = lower.index_copy(0, near, exact)
            upper = upper.index_copy(0, near, exact)
            coarse = cls(lower, coarse.lo, h, shape)
        return coarse

    def _cell(self, x: Tensor, y: Tensor, z: Tensor):
        nx, ny, nz = self.shape
        idx, frac = [], []
        for c, lo, n in ((x, self.lo[0], nx), (y, self.lo[1], ny), (z, self.lo[2], nz)):
            u = ((c - lo) / self.h).clamp(0.0, n - 1.0001)
            i = torch.floor(u)
            frac.append(u - i)
            idx.append(i.to(torch.int64))
        i, j, k = idx
        base = (i * ny + j) * nz + k
        return base, frac

    def interp_and_error(self, x: Tensor, y: Tensor, z: Tensor, values: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Trilinear value and its error bound ``e`` at points given as columns (clamped into the box).
        ``values`` (same layout as ``self.values``) may replace the grid's own values."""
        _, ny, nz = self.shape
        base, (tx, ty, tz) = self._cell(x, y, z)
        sx, sy = ny * nz, nz
        offsets = torch.tensor([0, 1, sy, sy + 1, sx, sx + 1, sx + sy, sx + sy + 1], device=base.device)
        vals = self.values if values is None else values
        c = vals.index_select(0, (base[None] + offsets[:, None]).reshape(-1)).reshape(8, -1)
        c000, c001, c010, c011, c100, c101, c110, c111 = c.unbind(0)
        a00 = c000 + tz * (c001 - c000)
        a01 = c010 + tz * (c011 - c010)
        a10 = c100 + tz * (c101 - c100)
        a11 = c110 + tz * (c111 - c110)
        b0 = a00 + ty * (a01 - a00)
        b1 = a10 + ty * (a11 - a10)
        val = b0 + tx * (b1 - b0)
        err = (tx * (1 - tx) + ty * (1 - ty) + tz * (1 - tz)).sqrt() * self.h
        return val, err

    def box_distance(self, x: Tensor, y: Tensor, z: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
        """Distance to the grid box (0 inside) and the nearest box point, as columns."""
        hi = self.hi
        q = tuple(c.clamp(self.lo[a], hi[a]) for a, c in enumerate((x, y, z)))
        dx, dy, dz = x - q[0], y - q[1], z - q[2]
        return (dx * dx + dy * dy + dz * dz).sqrt(), q

    def lower_bound(self, x: Tensor, y: Tensor, z: Tensor) -> Tensor:
        """A 1-Lipschitz-safe lower bound of the sampled SDF at any point (columns, world units)."""
        db, q = self.box_distance(x, y, z)
        val, err = self.interp_and_error(*q)
        g = val - err
        gp = g.clamp_min(0)
        outside = (db * db + gp * gp).sqrt()
        return torch.where(db > 0, outside, g)

    def interp(self, x: Tensor, y: Tensor, z: Tensor) -> Tensor:
        """Trilinear estimate of the SDF (no safety margin), plus the box distance outside the box."""
        db, q = self.box_distance(x, y, z)
        return self.interp_and_error(*q)[0] + db

    def to(self, device) -> SdfGrid:
        return SdfGrid(self.values.to(device), self.lo, self.h, self.shape)
