"""SDF primitives: leaf shapes centred at their local origin (axial ones along local z).

All are exact Euclidean distances except ``Ellipsoid`` (a 1-Lipschitz bound); the formulas follow
Inigo Quilez's catalogue of distance functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from recon.data.procedural._ops import length2
from recon.data.procedural.sdf_core import Field, SdfNode, _len


@dataclass(kw_only=True, eq=False)
class Primitive(SdfNode):
    """A leaf shape centred at its local origin. ``index`` numbers the leaves of an object; ``material``
    picks one of the object's materials."""

    index: int = 0
    material: int = 0

    def dist(self, p: Tensor) -> Tensor:
        raise NotImplementedError

    def query(self, p: Tensor, full: bool = False) -> Field:
        d = self.dist(p)
        if not full:
            return Field(d)
        return Field(d, torch.full_like(d, self.index, dtype=torch.int64), p)

    def leaves(self) -> list[Primitive]:
        return [self]


@dataclass(kw_only=True, eq=False)
class Sphere(Primitive):
    radius: float

    def dist(self, p):
        return _len(p) - self.radius

    def _bound(self):
        return (0.0, 0.0, 0.0), self.radius


def _box(node: SdfNode, p: Tensor, half) -> Tensor:
    q = p.abs() - node._const("half", [[h] for h in half], p)
    return _len(q.clamp_min(0)) + q.amax(0).clamp_max(0)


@dataclass(kw_only=True, eq=False)
class Box(Primitive):
    half: tuple[float, float, float]  # half extents along local x, y, z

    def dist(self, p):
        return _box(self, p, self.half)

    def _bound(self):
        return (0.0, 0.0, 0.0), math.hypot(*self.half)


@dataclass(kw_only=True, eq=False)
class RoundBox(Primitive):
    half: tuple[float, float, float]  # outer half extents
    radius: float  # edge rounding, < min(half)

    def dist(self, p):
        return _box(self, p, [h - self.radius for h in self.half]) - self.radius

    def _bound(self):
        return (0.0, 0.0, 0.0), math.hypot(*self.half)


@dataclass(kw_only=True, eq=False)
class Torus(Primitive):
    major: float  # ring radius in the local xy plane
    minor: float  # tube radius

    def dist(self, p):
        return length2(_len(p[:2]) - self.major, p[2]) - self.minor

    def _bound(self):
        return (0.0, 0.0, 0.0), self.major + self.minor


@dataclass(kw_only=True, eq=False)
class Capsule(Primitive):
    half_length: float  # segment from z = -h to z = +h
    radius: float

    def dist(self, p):
        z = p[2]
        dz = z - z.clamp(-self.half_length, self.half_length)
        xy = p[:2]
        return ((xy * xy).sum(0) + dz * dz).sqrt() - self.radius

    def _bound(self):
        return (0.0, 0.0, 0.0), self.half_length + self.radius


def _capped(dx: Tensor, dz: Tensor) -> Tensor:
    """Distance from two slab distances (negative inside both): exact for a prism."""
    return torch.maximum(dx, dz).clamp_max(0) + length2(dx.clamp_min(0), dz.clamp_min(0))


@dataclass(kw_only=True, eq=False)
class Cylinder(Primitive):
    half_height: float  # caps at z = +-h
    radius: float

    def dist(self, p):
        return _capped(_len(p[:2]) - self.radius, p[2].abs() - self.half_height)

    def _bound(self):
        return (0.0, 0.0, 0.0), math.hypot(self.half_height, self.radius)


@dataclass(kw_only=True, eq=False)
class Cone(Primitive):
    """Capped cone (frustum): radius ``r_bottom`` at z = -h, ``r_top`` at z = +h (one may be 0)."""

    half_height: float
    r_bottom: float
    r_top: float

    def dist(self, p):  # exact, after Quilez's sdCappedCone
        h, r1, r2 = self.half_height, self.r_bottom, self.r_top
        qx, qy = _len(p[:2]), p[2]
        k2x, k2y = r2 - r1, 2.0 * h
        ca_x = qx - torch.minimum(qx, torch.where(qy < 0, r1, r2))
        ca_y = qy.abs() - h
        t = (((r2 - qx) * k2x + (h - qy) * k2y) / (k2x * k2x + k2y * k2y)).clamp(0.0, 1.0)
        cb_x, cb_y = qx - r2 + k2x * t, qy - h + k2y * t
        sign = torch.where((cb_x < 0) & (ca_y < 0), -1.0, 1.0)
        return sign * torch.minimum(ca_x * ca_x + ca_y * ca_y, cb_x * cb_x + cb_y * cb_y).sqrt()

    def _bound(self):
        return (0.0, 0.0, 0.0), math.hypot(self.half_height, max(self.r_bottom, self.r_top))


@dataclass(kw_only=True, eq=False)
class Ellipsoid(Primitive):
    """Axis-aligned ellipsoid. Distance is the bound ``(|p / r| - 1) * min(r)``: ``|p / r| - 1`` grows
    at most ``1 / min(r)`` per unit, so the product is 1-Lipschitz and zero on the surface; exact
    for a sphere, increasingly conservative for elongated ellipsoids far from the surface."""

    radii: tuple[float, float, float]

    def dist(self, p):
        inv = self._const("inv", [[1.0 / r] for r in self.radii], p)
        return (_len(p * inv) - 1.0) * min(self.radii)

    def _bound(self):
        return (0.0, 0.0, 0.0), max(self.radii)


@dataclass(kw_only=True, eq=False)
class Octahedron(Primitive):
    size: float  # vertex distance from the centre along each axis

    def dist(self, p):  # exact, after Quilez's sdOctahedron
        s = self.size
        a = p.abs()
        ax, ay, az = a[0], a[1], a[2]
        m = a.sum(0) - s
        c1, c2, c3 = 3 * ax < m, 3 * ay < m, 3 * az < m
        qx = torch.where(c1, ax, torch.where(c2, ay, az))
        qy = torch.where(c1, ay, torch.where(c2, az, ax))
        qz = torch.where(c1, az, torch.where(c2, ax, ay))
        k = (0.5 * (qz - qy + s)).clamp(0.0, s)
        corner = (qx * qx + (qy - s + k) * (qy - s + k) + (qz - k) * (qz - k)).sqrt()
        return torch.where(c1 | c2 | c3, corner, m * 0.57735027)

    def _bound(self):
        return (0.0, 0.0, 0.0), self.size


@dataclass(kw_only=True, eq=False)
class HexPrism(Primitive):
    apothem: float  # inradius of the hexagon in the local xy plane
    half_height: float  # along z

    def dist(self, p):  # exact, after Quilez's sdHexPrism
        kx, ky, kz = -0.8660254, 0.5, 0.57735
        h = self.apothem
        a = p.abs()
        ax, ay, az = a[0], a[1], a[2]
        fold = 2.0 * (kx * ax + ky * ay).clamp_max(0.0)
        px, py = ax - fold * kx, ay - fold * ky
        ex = px - px.clamp(-kz * h, kz * h)
        dx = length2(ex, py - h) * torch.sign(py - h)
        return _capped(dx, az - self.half_height)

    def _bound(self):
        return (0.0, 0.0, 0.0), math.hypot(self.apothem / 0.8660254, self.half_height)


PRIMITIVES = (Sphere, Box, RoundBox, Torus, Capsule, Cylinder, Cone, Ellipsoid, Octahedron, HexPrism)
