"""Random shape generators: one function per style, each returning an SDF tree (unnormalised).

Styles, from simple to complex:

- ``blob``: one to three primitives in a smooth union, sometimes twisted, bent or rounded.
- ``csg``: a random boolean tree (union, smooth union, subtraction, intersection) of 2-8
  primitives, with shells (onion) cut open, twists and bends.
- ``vessel``: a lathe-like stack of frusta and ellipsoids, hollowed to a shell and cut open at the
  top (a deep concavity), optionally with a ring handle, feet and a rim.
- ``organic``: a smooth union of ellipsoids and capsules, limbs chained end to end, mirrored.
- ``assembly``: a mechanical core with up to ~30 attached parts (thin rods, plates, knobs,
  wheels, ring handles, blocks), drilled holes and dents, often mirror-symmetric.
- ``structure``: architecture: a base slab, a grid of (sometimes twisted) columns, a roof, walls
  with arches and windows, stairs.

Sizes are in arbitrary units around 1; ``objects.random_object`` normalises the result. Each
function takes a ``Builder`` which draws the random numbers and numbers the materials.
"""

from __future__ import annotations

import math

import torch

from recon.data.procedural import random_tools as rt
from recon.data.procedural.sdf import (
    Bend,
    Box,
    Capsule,
    Cone,
    Cylinder,
    Ellipsoid,
    HexPrism,
    Intersect,
    Mirror,
    Octahedron,
    Onion,
    Primitive,
    Round,
    RoundBox,
    SdfNode,
    Similarity,
    Sphere,
    Subtract,
    Torus,
    Twist,
    Union,
    union_tree,
)

SOLID_KINDS = ["sphere", "box", "roundbox", "torus", "capsule", "cylinder", "cone", "ellipsoid", "octahedron", "hexprism"]


class Builder:
    """Random-number source and material numbering shared by the style functions."""

    def __init__(self, gen: torch.Generator, n_materials: int):
        self.gen = gen
        self.n_materials = n_materials

    # random numbers
    def u(self, lo=0.0, hi=1.0):
        return rt.uniform(self.gen, lo, hi)

    def chance(self, p):
        return rt.chance(self.gen, p)

    def choice(self, options, weights=None):
        return rt.choice(self.gen, options, weights)

    def randint(self, lo, hi):
        return rt.randint(self.gen, lo, hi)

    def mat(self) -> int:
        return self.randint(0, self.n_materials - 1)

    # primitives
    def prim(self, kind: str, size: float, material: int | None = None) -> Primitive:
        """A primitive of typical radius ``size`` with random proportions."""
        m = self.mat() if material is None else material
        a = lambda: size * self.u(0.45, 1.0)
        if kind == "sphere":
            return Sphere(radius=size * self.u(0.6, 1.0), material=m)
        if kind == "box":
            return Box(half=(a(), a(), a()), material=m)
        if kind == "roundbox":
            h = (a(), a(), a())
            return RoundBox(half=h, radius=min(h) * self.u(0.1, 0.5), material=m)
        if kind == "torus":
            R = size * self.u(0.6, 0.9)
            return Torus(major=R, minor=R * self.u(0.12, 0.45), material=m)
        if kind == "capsule":
            return Capsule(half_length=size * self.u(0.3, 0.8), radius=size * self.u(0.2, 0.45), material=m)
        if kind == "cylinder":
            return Cylinder(half_height=size * self.u(0.2, 0.9), radius=size * self.u(0.25, 0.8), material=m)
        if kind == "cone":
            r1 = size * self.u(0.4, 0.9)
            return Cone(half_height=size * self.u(0.4, 0.9), r_bottom=r1, r_top=r1 * self.choice([0.0, self.u(0.1, 0.7)]), material=m)
        if kind == "ellipsoid":
            return Ellipsoid(radii=(a(), a(), a()), material=m)
        if kind == "octahedron":
            return Octahedron(size=size * self.u(0.7, 1.0), material=m)
        if kind == "hexprism":
            return HexPrism(apothem=size * self.u(0.3, 0.8), half_height=size * self.u(0.3, 0.9), material=m)
        raise ValueError(kind)

    def place(self, node: SdfNode, R=rt.IDENTITY, t=(0.0, 0.0, 0.0), s: float = 1.0) -> SdfNode:
        return Similarity.compose(node, R, t, s)

    def deform(self, node: SdfNode, p: float = 0.3) -> SdfNode:
        """Sometimes twist or bend a part (rates keep the distortion moderate for its size)."""
        if not self.chance(p):
            return node
        _, r = node.bound
        if self.chance(0.5):
            return Twist(node, self.u(-1.0, 1.0) * math.pi / max(r, 1e-3) * 0.5)
        return Bend(node, self.u(-1.0, 1.0) * 0.6 / max(r, 1e-3))


def surface_point(node: SdfNode, origin, u, reach: float) -> tuple[float, float, float]:
    """The outermost point of ``node``'s surface on the ray ``origin + t u``, t in [0, reach]."""
    t = torch.linspace(0.0, reach, 97)
    pts = torch.tensor(origin)[None] + t[:, None] * torch.tensor(u)[None]
    d = node.distance(pts)
    inside = (d <= 0).nonzero()[:, 0]
    if len(inside) == 0:
        i = int(d.argmin())
        return tuple(float(v) for v in pts[i])
    lo, hi = float(t[int(inside[-1])]), float(t[min(int(inside[-1]) + 1, 96)])
    for _ in range(12):
        mid = 0.5 * (lo + hi)
        q = torch.tensor([origin]) + mid * torch.tensor([u])
        lo, hi = (mid, hi) if float(node.distance(q)[0]) <= 0 else (lo, mid)
    return tuple(origin[i] + lo * u[i] for i in range(3))


# ---- styles ---------------------------------------------------------------------------------


def blob(b: Builder, n: int) -> SdfNode:
    kinds = ["sphere", "ellipsoid", "roundbox", "capsule", "torus", "box", "cone", "cylinder", "octahedron", "hexprism"]
    parts = []
    for i in range(min(max(n, 1), 3)):
        R = rt.random_rotation(b.gen)
        t = (0.0, 0.0, 0.0) if i == 0 else rt.unit_vector(b.gen)
        parts.append(b.place(b.prim(b.choice(kinds), 0.8 if i == 0 else 0.5, material=0 if b.chance(0.6) else None), R,
                             tuple(v * b.u(0.3, 0.7) for v in t)))
    node = parts[0] if len(parts) == 1 else Union(parts, k=b.u(0.1, 0.4))
    node = b.deform(node, p=0.45)
    return Round(node, b.u(0.02, 0.1)) if b.chance(0.25) else node


def csg(b: Builder, n: int, depth: int | None = None) -> SdfNode:
    """A random boolean tree with about ``n`` leaves."""
    if n <= 1:
        leaf = b.prim(b.choice(SOLID_KINDS), b.u(0.35, 0.7))
        return b.place(leaf, rt.random_rotation(b.gen), tuple(v * b.u(0.0, 0.4) for v in rt.unit_vector(b.gen)))
    na = max(1, round(n * b.u(0.4, 0.75)))
    a, c = csg(b, na), csg(b, n - na)
    op = b.choice(["union", "smooth", "subtract", "intersect"], [0.35, 0.25, 0.3, 0.1])
    k = b.u(0.03, 0.2) if op == "smooth" or b.chance(0.3) else 0.0
    if op in ("union", "smooth"):
        node = Union([a, c], k=k)
    elif op == "subtract":
        node = Subtract(a, c, k=k)
    else:
        node = Intersect(a, Round(c, 0.15), k=k)
    if b.chance(0.15):  # hollow shell cut open by a half-space box
        _, r = node.bound
        node = Subtract(Onion(node, b.u(0.02, 0.06)), b.place(Box(half=(2 * r, 2 * r, r), material=0), rt.random_rotation(b.gen),
                                                             tuple(v * r * b.u(0.9, 1.2) for v in rt.unit_vector(b.gen))))
    return b.deform(node, p=0.15)


def vessel(b: Builder, n: int) -> SdfNode:
    body_mat, z, segs = 0, -0.7, []
    r = b.u(0.35, 0.6)
    for _ in range(b.randint(1, 3)):
        h = b.u(0.15, 0.45)
        r2 = max(0.12, r * b.u(0.6, 1.35))
        kind = b.choice(["cone", "ellipsoid", "cylinder"], [0.5, 0.3, 0.2])
        prim = (Cone(half_height=h, r_bottom=r, r_top=r2, material=body_mat) if kind == "cone" else
                Ellipsoid(radii=(r, r, h * 1.2), material=body_mat) if kind == "ellipsoid" else
                Cylinder(half_height=h, radius=0.5 * (r + r2), material=body_mat))
        segs.append(b.place(prim, t=(0.0, 0.0, z + h)))
        z, r = z + 2 * h, r2
    body = segs[0] if len(segs) == 1 else Union(segs, k=b.u(0.05, 0.15))
    thick = b.u(0.02, 0.05)
    cut_z = z - b.u(0.0, 0.15)
    shell = Subtract(Onion(body, thick), b.place(Box(half=(2.0, 2.0, 1.0), material=0), t=(0.0, 0.0, cut_z + 1.0)))
    parts: list[SdfNode] = [shell]
    extra = max(0, n - 2)
    if extra and b.chance(0.6):  # ring handle on the side
        hr = b.u(0.15, 0.3)
        parts.append(b.place(Torus(major=hr, minor=b.u(0.025, 0.05), material=b.mat()), rt.z_to((0.0, 1.0, 0.0)),
                             (r * 0.9 + hr * 0.6, 0.0, 0.5 * (cut_z - 0.7))))
        extra -= 1
    if extra and b.chance(0.5):  # rim
        parts.append(b.place(Torus(major=r, minor=thick * b.u(1.2, 2.0), material=b.mat()), t=(0.0, 0.0, cut_z)))
        extra -= 1
    legs = min(extra, b.choice([0, 3, 4]))
    for i in range(legs):
        ang = 2 * math.pi * i / legs
        parts.append(b.place(Capsule(half_length=0.12, radius=0.035, material=b.mat()),
                             rt.z_to((math.cos(ang) * 0.5, math.sin(ang) * 0.5, -1.0)), (0.3 * math.cos(ang), 0.3 * math.sin(ang), -0.78)))
    return union_tree(parts)


def _attach(b: Builder, parts: list, anchor: SdfNode, kind: str, size: float, u, material: int) -> SdfNode:
    """A new part of ``kind`` sticking out of ``anchor``'s surface along direction ``u``."""
    c, r = anchor.bound
    p = surface_point(anchor, c, u, 1.2 * r)
    spin = b.u(0, 2 * math.pi)
    if kind == "rod":
        L, rad = size * b.u(0.8, 2.2), size * b.u(0.04, 0.12)
        part = (Capsule(half_length=L / 2, radius=rad, material=material) if b.chance(0.6)
                else Cylinder(half_height=L / 2, radius=rad, material=material))
        part = b.deform(part, p=0.2)
        return b.place(part, rt.z_to(u, spin), tuple(p[i] + u[i] * (L / 2 - rad) for i in range(3)))
    if kind == "plate":
        ext, thin = size * b.u(0.4, 1.0), size * b.u(0.03, 0.08)
        part = RoundBox(half=(thin, ext * b.u(0.4, 1.0), ext), radius=thin * 0.5, material=material)
        return b.place(part, rt.z_to(u, spin), tuple(p[i] + u[i] * ext * 0.7 for i in range(3)))
    if kind == "wheel":
        R = size * b.u(0.3, 0.6)
        part = (Torus(major=R, minor=R * b.u(0.2, 0.4), material=material) if b.chance(0.5)
                else Cylinder(half_height=R * b.u(0.15, 0.4), radius=R, material=material))
        side = rt.normalize(rt.cross(u, rt.unit_vector(b.gen)))
        return b.place(part, rt.z_to(side), tuple(p[i] + u[i] * R * 0.5 for i in range(3)))
    if kind == "ring":  # a handle: half of a torus sticks out, leaving a through-hole
        R = size * b.u(0.25, 0.5)
        part = Torus(major=R, minor=R * b.u(0.12, 0.25), material=material)
        side = rt.normalize(rt.cross(u, rt.unit_vector(b.gen)))
        return b.place(part, rt.z_to(side), p)
    if kind == "knob":
        part = b.prim(b.choice(["sphere", "ellipsoid", "octahedron", "cone", "hexprism"]), size * b.u(0.2, 0.45), material)
        return b.place(part, rt.z_to(u, spin), p)
    part = b.prim(b.choice(["box", "roundbox", "cylinder", "hexprism", "ellipsoid", "capsule"]), size * b.u(0.3, 0.6), material)
    return b.place(part, rt.axis_aligned_rotation(b.gen, 10.0), tuple(p[i] + u[i] * size * 0.2 for i in range(3)))


def _grow(b: Builder, n: int, core: SdfNode, kinds: list[str], weights: list[float], symmetric: bool, chain: float) -> list[SdfNode]:
    parts, anchor = [core], core
    core_r = core.bound[1]
    for _ in range(n - 1):
        if not b.chance(chain):
            anchor = parts[0] if b.chance(0.5) else b.choice(parts)
        u = rt.unit_vector(b.gen)
        if symmetric:
            u = (abs(u[0]) + 0.2, u[1], u[2])
            u = rt.normalize(u)
        kind = b.choice(kinds, weights)
        size = core_r * b.u(0.35, 0.8) if anchor is core else anchor.bound[1] * b.u(0.6, 1.1)
        part = _attach(b, parts, anchor, kind, min(size, core_r * 0.8), u, b.mat() if b.chance(0.6) else 0)
        parts.append(part)
        anchor = part
    return parts


def _holes(b: Builder, body: SdfNode, count: int) -> SdfNode:
    """Drill ``count`` holes or dents into ``body`` (cylinders through it, spheres into its surface)."""
    c, r = body.bound
    cutters = []
    for _ in range(count):
        u = rt.unit_vector(b.gen)
        p = surface_point(body, c, u, 1.2 * r)
        if b.chance(0.5):
            cutters.append(b.place(Cylinder(half_height=r * 2, radius=r * b.u(0.05, 0.18), material=0), rt.z_to(u), p))
        else:
            cutters.append(b.place(Sphere(radius=r * b.u(0.1, 0.3), material=0), t=p))
    return Subtract(body, union_tree(cutters), k=b.choice([0.0, 0.02]))


def assembly(b: Builder, n: int) -> SdfNode:
    core_kind = b.choice(["box", "roundbox", "cylinder", "ellipsoid", "sphere", "hexprism", "capsule"])
    core = b.place(b.prim(core_kind, 0.5, material=0), rt.axis_aligned_rotation(b.gen))
    symmetric = b.chance(0.6)
    n_holes = min(n // 6, b.randint(0, 3))
    n_parts = max(1, n - n_holes)
    if symmetric:  # each attached part appears twice
        n_parts = 1 + (n_parts - 1) // 2
    parts = _grow(b, n_parts, core, ["rod", "knob", "plate", "wheel", "block", "ring"], [0.3, 0.2, 0.15, 0.1, 0.18, 0.07],
                  symmetric, chain=0.25)
    body = union_tree(parts, k=b.choice([0.0, 0.0, b.u(0.01, 0.05)]))
    if n_holes:
        body = _holes(b, body, n_holes)
    return Mirror(body, axis=0) if symmetric else body


def organic(b: Builder, n: int) -> SdfNode:
    core = b.place(Ellipsoid(radii=(b.u(0.3, 0.45), b.u(0.3, 0.6), b.u(0.3, 0.5)), material=0), rt.random_rotation(b.gen))
    symmetric = b.chance(0.7)
    n_parts = 1 + (max(n, 2) - 1) // (2 if symmetric else 1)
    parts = _grow(b, n_parts, core, ["rod", "knob", "block"], [0.55, 0.3, 0.15], symmetric, chain=0.55)
    body = union_tree(parts, k=b.u(0.04, 0.12))
    return Mirror(body, axis=0) if symmetric else body


def structure(b: Builder, n: int) -> SdfNode:
    mat_base, mat_col, mat_roof = 0, b.mat(), b.mat()
    W, D = b.u(0.5, 0.9), b.u(0.5, 0.9)
    H = b.u(0.5, 1.1)
    parts: list[SdfNode] = [b.place(Box(half=(W + 0.08, D + 0.08, 0.06), material=mat_base), t=(0.0, 0.0, 0.06))]
    m = max(2, min(4, round(math.sqrt(max(n - 3, 4)))))
    col_kind = b.choice(["cylinder", "hexprism", "box"])
    col_r = min(W, D) / m * b.u(0.15, 0.35)
    twist = b.chance(0.25)
    for i in range(m):
        for j in range(m):
            if 0 < i < m - 1 and 0 < j < m - 1:
                continue  # columns on the perimeter only
            col = (Cylinder(half_height=H / 2, radius=col_r, material=mat_col) if col_kind == "cylinder" else
                   HexPrism(apothem=col_r, half_height=H / 2, material=mat_col) if col_kind == "hexprism" else
                   Box(half=(col_r, col_r, H / 2), material=mat_col))
            if twist:
                col = Twist(col, b.u(1.0, 3.0))
            x, y = -W + 2 * W * i / (m - 1), -D + 2 * D * j / (m - 1)
            parts.append(b.place(col, t=(x * 0.85, y * 0.85, 0.12 + H / 2)))
    top = 0.12 + H
    roof = b.choice(["slab", "cone", "pyramid", "dome"])
    if roof == "slab":
        parts.append(b.place(Box(half=(W, D, 0.06), material=mat_roof), t=(0.0, 0.0, top + 0.06)))
    elif roof == "cone":
        parts.append(b.place(Cone(half_height=0.3, r_bottom=max(W, D) * 1.1, r_top=0.0, material=mat_roof), t=(0.0, 0.0, top + 0.3)))
    elif roof == "pyramid":
        upper = b.place(Box(half=(1.0, 1.0, 0.5), material=mat_roof), t=(0.0, 0.0, 0.5))
        pyr = Intersect(Octahedron(size=1.0, material=mat_roof), upper)  # apex at z = 1, square base at z = 0
        parts.append(b.place(pyr, rt.axis_angle((0, 0, 1), math.pi / 4), (0.0, 0.0, top), max(W, D) * 1.3))
    else:
        parts.append(b.place(Subtract(Sphere(radius=1.0, material=mat_roof), b.place(Box(half=(2, 2, 1), material=0), t=(0, 0, -1))),
                             t=(0.0, 0.0, top), s=min(W, D)))
    if n > 8 and b.chance(0.6):  # a wall with arches and windows on one side
        wall = b.place(Box(half=(W * 0.85, 0.04, H / 2), material=b.mat()), t=(0.0, -D * 0.85, 0.12 + H / 2))
        cuts = []
        for k in range(b.randint(1, 3)):
            x = -W * 0.6 + 1.2 * W * (k + 0.5) / 3
            if b.chance(0.5):
                cuts.append(b.place(Cylinder(half_height=0.2, radius=H * 0.18, material=0), rt.z_to((0, 1, 0)), (x, -D * 0.85, 0.12 + H * 0.45)))
            else:
                cuts.append(b.place(Box(half=(H * 0.1, 0.2, H * 0.12), material=0), t=(x, -D * 0.85, 0.12 + H * 0.6)))
        parts.append(Subtract(wall, union_tree(cuts)))
    steps = min(max(0, n - len(parts) - 1), 4)
    for s in range(steps):  # stairs in front
        parts.append(b.place(Box(half=(W * 0.4, 0.08, 0.03 * (steps - s)), material=mat_base),
                             t=(0.0, D + 0.08 + 0.16 * s + 0.08, 0.03 * (steps - s))))
    return union_tree(parts)


STYLES = {"blob": blob, "csg": csg, "vessel": vessel, "organic": organic, "assembly": assembly, "structure": structure}


def style_weights(complexity: float) -> dict[str, float]:
    """How likely each style is at a complexity in [0, 1] (simple shapes dominate at low complexity)."""
    c = complexity
    return {"blob": max(0.0, 1.0 - 3 * c), "csg": 0.6 * (1 - abs(c - 0.3)), "vessel": 0.3 if 0.1 < c < 0.7 else 0.05,
            "organic": 0.4 * min(1.0, 2 * c), "assembly": 1.2 * c, "structure": 0.5 * c if c > 0.25 else 0.0}
