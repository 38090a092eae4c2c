"""SDF operations: (smooth) booleans with exact bounding-sphere skipping, and domain operations
(similarity transforms, round, onion, mirror, twist, bend).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor

from recon.data.procedural._ops import sincos
from recon.data.procedural.sdf_core import (
    CULL_MIN_POINTS,
    IDENTITY,
    Field,
    SdfNode,
    _len,
    smax,
    smin,
)


def _sphere_dist(node: SdfNode, p: Tensor) -> Tensor:
    """Distance from points ``[3, P]`` to ``node``'s bounding sphere (negative inside it)."""
    c, r = node.bound
    return _len(p - node._const("bound_centre", [[v] for v in c], p)) - r


def _merge_union(a: Field, b: Field, k: float) -> Field:
    return a.select(b.d < a.d, b, smin(a.d, b.d, k))


@dataclass(eq=False)
class Union(SdfNode):
    """(Smooth) union of any number of children; ``k`` is the smooth-min blend radius (0 = hard)."""

    parts: list[SdfNode]
    k: float = 0.0

    def children(self):
        return list(self.parts)

    @cached_property
    def _order(self) -> list[SdfNode]:
        # Largest first gives a small running minimum early, so later children are skipped more.
        return sorted(self.parts, key=lambda c: -c.bound[1])

    def query(self, p: Tensor, full: bool = False) -> Field:
        kids = self._order
        acc = kids[0].query(p, full)
        n = acc.d.shape[0]
        if n < CULL_MIN_POINTS:  # few points: skipping costs more ops than it saves
            for child in kids[1:]:
                acc = _merge_union(acc, child.query(p, full), self.k)
            return acc
        for child in kids[1:]:
            # child >= its bounding-sphere distance; where that is >= acc + k the union is acc exactly.
            idx = (_sphere_dist(child, p) < acc.d + self.k).nonzero()[:, 0]
            if idx.numel() == n:
                acc = _merge_union(acc, child.query(p, full), self.k)
            elif idx.numel():
                acc = acc.put(idx, _merge_union(acc.take(idx), child.query(p.index_select(1, idx), full), self.k))
        return acc

    def _bound(self):
        spheres = [c.bound for c in self.parts]
        lo = [min(c[i] - r for c, r in spheres) for i in range(3)]
        hi = [max(c[i] + r for c, r in spheres) for i in range(3)]
        cen = tuple((a + b) / 2 for a, b in zip(lo, hi))
        rad = max(math.dist(cen, c) + r for c, r in spheres) + self.k
        return cen, rad


def union_tree(parts: list[SdfNode], k: float = 0.0, leaf_size: int = 3) -> SdfNode:
    """A union of ``parts`` as a balanced tree of small unions, split at the median of the longest
    axis of the parts' bounding-sphere centres (a bounding-volume hierarchy: whole groups far
    from a point are skipped with one sphere test). For ``k = 0`` it equals the flat union; for
    ``k > 0`` blends are grouped differently but the result is still a 1-Lipschitz smooth union."""
    if len(parts) == 1:
        return parts[0]
    if len(parts) <= leaf_size:
        return Union(list(parts), k)
    cen = [c.bound[0] for c in parts]
    axis = max(range(3), key=lambda a: max(c[a] for c in cen) - min(c[a] for c in cen))
    order = sorted(range(len(parts)), key=lambda i: (cen[i][axis], i))
    half = len(parts) // 2
    return Union([union_tree([parts[i] for i in order[:half]], k, leaf_size),
                  union_tree([parts[i] for i in order[half:]], k, leaf_size)], k)


@dataclass(eq=False)
class Subtract(SdfNode):
    """``base`` minus ``cutter``: ``smax(base, -cutter, k)``. Cut faces take the base's material."""

    base: SdfNode
    cutter: SdfNode
    k: float = 0.0

    def children(self):
        return [self.base, self.cutter]

    def query(self, p: Tensor, full: bool = False) -> Field:
        acc = self.base.query(p, full)
        if acc.d.shape[0] < CULL_MIN_POINTS:
            return Field(smax(acc.d, -self.cutter.query(p, False).d, self.k), acc.leaf, acc.local)
        # max(a, -b) == a wherever b >= k - a; b >= its bounding-sphere distance.
        idx = (_sphere_dist(self.cutter, p) < self.k - acc.d).nonzero()[:, 0]
        if idx.numel():
            sub = acc.take(idx)
            cut = self.cutter.query(p.index_select(1, idx), False).d
            acc = acc.put(idx, Field(smax(sub.d, -cut, self.k), sub.leaf, sub.local))
        return acc

    def _bound(self):
        return self.base.bound


@dataclass(eq=False)
class Intersect(SdfNode):
    """``smax(a, b, k)``; material from the child whose surface bounds the result."""

    a: SdfNode
    b: SdfNode
    k: float = 0.0

    def children(self):
        return [self.a, self.b]

    def query(self, p: Tensor, full: bool = False) -> Field:
        fa, fb = self.a.query(p, full), self.b.query(p, full)
        return fa.select(fb.d > fa.d, fb, smax(fa.d, fb.d, self.k))

    def _bound(self):
        return min(self.a.bound, self.b.bound, key=lambda s: s[1])


# ---- domain operations ------------------------------------------------------------------------


@dataclass(eq=False)
class Similarity(SdfNode):
    """Child placed by ``x_parent = scale * R @ x_child + translation``; distance ``scale * f(x_child)``.

    ``rotation`` is a proper 3x3 rotation (rows as tuples); ``scale`` > 0 is uniform, so the
    distance stays exact once multiplied back by it. The point map is one ``addmm`` with
    ``M = R^T / scale`` and ``c = -M @ translation``.
    """

    child: SdfNode
    rotation: tuple[tuple[float, float, float], ...] = IDENTITY
    translation: tuple[float, float, float] = (0.0, 0.0, 0.0)
    scale: float = 1.0

    def children(self):
        return [self.child]

    @classmethod
    def compose(cls, child: SdfNode, rotation=IDENTITY, translation=(0.0, 0.0, 0.0), scale: float = 1.0) -> Similarity:
        """``Similarity(child, ...)``, merged with ``child`` when that is a Similarity too."""
        if isinstance(child, Similarity):
            R, c = rotation, child
            Rc = tuple(tuple(sum(R[i][k] * c.rotation[k][j] for k in range(3)) for j in range(3)) for i in range(3))
            t = tuple(scale * sum(R[i][k] * c.translation[k] for k in range(3)) + translation[i] for i in range(3))
            return cls(c.child, Rc, t, scale * c.scale)
        return cls(child, tuple(tuple(float(v) for v in r) for r in rotation), tuple(float(v) for v in translation), float(scale))

    @cached_property
    def _affine(self) -> tuple[list, list]:
        R, t, inv = self.rotation, self.translation, 1.0 / self.scale
        M = [[R[j][i] * inv for j in range(3)] for i in range(3)]  # R^T / s
        c = [[-sum(M[i][j] * t[j] for j in range(3))] for i in range(3)]
        return M, c

    def query(self, p: Tensor, full: bool = False) -> Field:
        M, c = self._affine
        q = torch.addmm(self._const("c", c, p), self._const("M", M, p), p)
        f = self.child.query(q, full)
        if self.scale == 1.0:
            return f
        d = f.d * self.scale
        if not full:
            return Field(d)
        return Field(d, f.leaf, f.local * self.scale)  # texture coordinates in world units

    def _bound(self):
        (cx, cy, cz), r = self.child.bound
        R, s = self.rotation, self.scale
        c = tuple(s * (R[i][0] * cx + R[i][1] * cy + R[i][2] * cz) + self.translation[i] for i in range(3))
        return c, s * r


@dataclass(eq=False)
class Round(SdfNode):
    """Inflate by ``radius``: rounds edges and thickens (exact if the child is exact outside)."""

    child: SdfNode
    radius: float

    def children(self):
        return [self.child]

    def query(self, p, full=False):
        f = self.child.query(p, full)
        return Field(f.d - self.radius, f.leaf, f.local)

    def _bound(self):
        c, r = self.child.bound
        return c, r + self.radius


@dataclass(eq=False)
class Onion(SdfNode):
    """Hollow shell of half-thickness ``thickness`` around the child's surface: ``|f| - t``."""

    child: SdfNode
    thickness: float

    def children(self):
        return [self.child]

    def query(self, p, full=False):
        f = self.child.query(p, full)
        return Field(f.d.abs() - self.thickness, f.leaf, f.local)

    def _bound(self):
        c, r = self.child.bound
        return c, r + self.thickness


@dataclass(eq=False)
class Mirror(SdfNode):
    """Symmetry about the plane ``x_axis = 0`` of this frame: points fold to the ``x_axis >= 0`` side.

    Exact when the child lies in the kept half-space (its mirror image is then added); place the
    plane anywhere with a ``Similarity`` around it.
    """

    child: SdfNode
    axis: int = 0

    def children(self):
        return [self.child]

    def query(self, p, full=False):
        q = p.clone()
        q[self.axis].abs_()
        return self.child.query(q, full)

    def _bound(self):
        c, r = self.child.bound
        c2 = list(c)
        off = abs(c2[self.axis])
        c2[self.axis] = 0.0
        return tuple(c2), r + off


@dataclass(eq=False)
class _Deform(SdfNode):
    """Base of Twist and Bend: ``g = max(min(f(T p) / L, m), |p - c| - R)``.

    ``T`` rotates points by an angle proportional to a coordinate; ``L`` bounds the norm of its
    Jacobian over the ball of radius ``R + m`` around the node's bounding sphere centre ``c``, so
    ``f(T p) / L`` is 1-Lipschitz there; outside that ball the sphere distance (>= m) takes over.
    The max of 1-Lipschitz functions is 1-Lipschitz, and g has the deformed surface as zero set.
    """

    child: SdfNode
    rate: float  # radians per world unit

    def children(self):
        return [self.child]

    @cached_property
    def _lipschitz(self) -> tuple[float, float]:
        _, R = self.bound
        m = 0.25 * R
        return self._jacobian_norm(abs(self.rate) * (R + m)), m

    def _map(self, p: Tensor) -> Tensor:
        raise NotImplementedError

    def _jacobian_norm(self, s: float) -> float:
        raise NotImplementedError

    def query(self, p, full=False):
        L, m = self._lipschitz
        f = self.child.query(self._map(p), full)
        d = torch.maximum((f.d / L).clamp_max(m), _sphere_dist(self, p))
        return Field(d, f.leaf, f.local)


@dataclass(eq=False)
class Twist(_Deform):
    """Twist about the local z axis: the child's frame turns by ``rate * z`` radians."""

    def _map(self, p):
        x, y, z = p[0], p[1], p[2]
        s, c = sincos(z * self.rate)
        return torch.stack([c * x + s * y, c * y - s * x, z])

    def _jacobian_norm(self, s):  # a rotation times the shear [[1, 0, a], [0, 1, b], [0, 0, 1]], |(a, b)| <= s
        return 0.5 * (s + math.sqrt(s * s + 4.0))

    def _bound(self):
        (cx, cy, cz), r = self.child.bound
        return (0.0, 0.0, cz), math.hypot(math.hypot(cx, cy) + r, r)


@dataclass(eq=False)
class Bend(_Deform):
    """Bend in the local xz plane: the child's frame turns about y by ``rate * x`` radians."""

    def _map(self, p):
        x, y, z = p[0], p[1], p[2]
        s, c = sincos(x * self.rate)
        return torch.stack([c * x + s * z, y, c * z - s * x])

    def _jacobian_norm(self, s):  # a rotation times (I + u e_x^T) with |u| <= s
        return 1.0 + s

    def _bound(self):
        (cx, cy, cz), r = self.child.bound
        return (0.0, cy, 0.0), math.hypot(math.hypot(cx, cz) + r, r)
