"""Core of the SDF trees: the ``SdfNode`` base class, ``Field`` results, smooth min/max.

See ``recon.data.procedural.sdf`` for the exactness of every node and the layout of points.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor

IDENTITY = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
CULL_MIN_POINTS = 2048  # below this many points, unions evaluate every child (fewer torch ops)
Sphere3 = tuple[tuple[float, float, float], float]  # bounding sphere: centre, radius


def _len(v: Tensor) -> Tensor:
    """Euclidean length of the columns of ``[k, P]`` -> ``[P]`` (sum over rows in a fixed order)."""
    return (v * v).sum(0).sqrt()


def to_pts(points: Tensor) -> Tensor:
    """``[P, 3]`` world points -> the internal ``[3, P]`` layout."""
    return points.t().contiguous()


@dataclass
class Field:
    """Distances ``d [P]``; with ``full``: ``leaf [P]`` int64 leaf indices and ``local [3, P]``
    points in the owning leaf's frame (world units)."""

    d: Tensor
    leaf: Tensor | None = None
    local: Tensor | None = None

    def take(self, idx: Tensor) -> Field:
        if self.leaf is None:
            return Field(self.d.index_select(0, idx))
        return Field(self.d.index_select(0, idx), self.leaf.index_select(0, idx), self.local.index_select(1, idx))

    def put(self, idx: Tensor, sub: Field) -> Field:
        d = self.d.index_copy(0, idx, sub.d)
        if self.leaf is None:
            return Field(d)
        return Field(d, self.leaf.index_copy(0, idx, sub.leaf), self.local.index_copy(1, idx, sub.local))

    def select(self, take_other: Tensor, other: Field, d: Tensor) -> Field:
        """New distances ``d``; material data from ``other`` where ``take_other``."""
        if self.leaf is None:
            return Field(d)
        return Field(d, torch.where(take_other, other.leaf, self.leaf), torch.where(take_other, other.local, self.local))


def smin(a: Tensor, b: Tensor, k: float) -> Tensor:
    """Polynomial (quadratic) smooth minimum with blend radius ``k`` (world units); ``min`` if k = 0."""
    m = torch.minimum(a, b)
    if k <= 0:
        return m
    h = (k - (a - b).abs()).clamp_min(0.0) / k
    return m - h * h * (0.25 * k)


def smax(a: Tensor, b: Tensor, k: float) -> Tensor:
    return -smin(-a, -b, k)


class SdfNode:
    """Base of all nodes. Subclasses implement ``query`` and ``_bound``."""

    def query(self, p: Tensor, full: bool = False) -> Field:
        """Distances at points ``p [3, P]`` of this node's frame (see ``Field``)."""
        raise NotImplementedError

    def _bound(self) -> Sphere3:
        raise NotImplementedError

    @cached_property
    def bound(self) -> Sphere3:
        """Bounding sphere ``((cx, cy, cz), r)`` of the shape, in this node's input frame."""
        return self._bound()

    def children(self) -> list[SdfNode]:
        return []

    def distance(self, points: Tensor) -> Tensor:
        """Signed distance ``[P]`` at ``points [P, 3]`` (this node's frame, world units)."""
        return self.query(to_pts(points)).d

    def leaves(self) -> list[SdfNode]:
        """The primitive leaves under this node, depth first."""
        out = []
        for c in self.children():
            out += c.leaves()
        return out

    def _const(self, name: str, value, like: Tensor) -> Tensor:
        """A small constant tensor on ``like``'s device and dtype, made once per node."""
        cache = self.__dict__.setdefault("_consts", {})
        key = (name, like.device, like.dtype)
        if key not in cache:
            cache[key] = torch.tensor(value, dtype=like.dtype, device=like.device)
        return cache[key]
