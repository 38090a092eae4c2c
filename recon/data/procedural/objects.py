"""Procedural objects and scenes: an SDF tree, per-part materials, bounds, and an optional room.

World frame: z up, world units. ``random_object`` centres its shape at the origin and scales it so
that it fits in a sphere of radius ``OBJECT_RADIUS`` (0.9). ``random_scene`` stands a few smaller
objects on the floor (z = 0) of a textured room (``Room``: an inverted box or a dome), for
full-frame, unmasked views.

Materials: every primitive leaf carries a material index; the colour at a surface point comes
from the leaf that forms the surface there (see ``sdf`` module docstring for the rule), evaluated
in that leaf's frame in world units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from recon.data.procedural import random_tools as rt
from recon.data.procedural._ops import normalize
from recon.data.procedural.grid import SdfGrid
from recon.data.procedural.sdf import SdfNode, Similarity, Sphere, to_pts, union_tree
from recon.data.procedural.shapes import STYLES, Builder, style_weights
from recon.data.procedural.texture import Material, random_material, random_palette

OBJECT_RADIUS = 0.9
TRACE_GRID_RES = 65  # nodes along the longest side of the tracer's acceleration grid
Vec3 = tuple[float, float, float]


@dataclass(eq=False)
class Room:
    """A closed environment around a scene; the floor is the plane z = 0.

    ``kind == "box"``: inside of [-half_x, half_x] x [-half_y, half_y] x [0, height].
    ``kind == "dome"``: inside of the hemisphere of radius ``half_x`` above the floor.
    Faces: 0 floor, 1 walls (or dome), 2 ceiling. Textures use world coordinates.
    """

    half_x: float
    half_y: float
    height: float
    floor: Material
    walls: Material
    ceiling: Material
    kind: str = "box"

    def sdf(self, points: Tensor) -> Tensor:
        """Distance to the nearest room surface, positive inside the room ``[P]``."""
        x, y, z = points.unbind(-1)
        if self.kind == "dome":
            return torch.minimum(z, self.half_x - (x * x + y * y + z * z).sqrt())
        walls = torch.minimum(torch.minimum(self.half_x - x, self.half_x + x), torch.minimum(self.half_y - y, self.half_y + y))
        return torch.minimum(torch.minimum(z, self.height - z), walls)

    def intersect(self, o: Tensor, d: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Exit of rays ``o + t d`` (origins inside, unit ``d`` [N, 3]) -> ``t [N]``, face ``[N]``, normal ``[N, 3]``."""
        big = torch.full_like(o[:, 0], 1e6)
        t_floor = torch.where(d[:, 2] < 0, -o[:, 2] / d[:, 2].clamp_max(-1e-12), big)
        if self.kind == "dome":
            b = o[:, 0] * d[:, 0] + o[:, 1] * d[:, 1] + o[:, 2] * d[:, 2]
            c = o[:, 0] * o[:, 0] + o[:, 1] * o[:, 1] + o[:, 2] * o[:, 2] - self.half_x ** 2
            t_side = -b + (b * b - c).clamp_min(0).sqrt()
            t_top = big
        else:
            tx = torch.where(d[:, 0] > 0, self.half_x - o[:, 0], -self.half_x - o[:, 0]) / torch.where(d[:, 0] == 0, 1e-12, d[:, 0])
            ty = torch.where(d[:, 1] > 0, self.half_y - o[:, 1], -self.half_y - o[:, 1]) / torch.where(d[:, 1] == 0, 1e-12, d[:, 1])
            t_side = torch.minimum(tx.abs(), ty.abs())
            t_top = torch.where(d[:, 2] > 0, (self.height - o[:, 2]) / d[:, 2].clamp_min(1e-12), big)
        t = torch.minimum(t_floor, torch.minimum(t_side, t_top))
        face = torch.where(t == t_floor, 0, torch.where(t == t_top, 2, 1))
        p = o + t[:, None] * d
        if self.kind == "dome":
            wall_n = -normalize(p)
        else:
            ax = tx.abs() < ty.abs()  # the x wall comes first
            wall_n = torch.stack([torch.where(ax, -torch.sign(d[:, 0]), 0.0), torch.where(ax, 0.0, -torch.sign(d[:, 1])),
                                  torch.zeros_like(t)], -1)
        zn = torch.zeros_like(wall_n)
        floor_n, ceil_n = zn + torch.tensor([0.0, 0.0, 1.0], device=o.device), zn + torch.tensor([0.0, 0.0, -1.0], device=o.device)
        n = torch.where((face == 0)[:, None], floor_n, torch.where((face == 2)[:, None], ceil_n, wall_n))
        return t, face, n

    def albedo(self, points: Tensor, face: Tensor) -> Tensor:
        out = torch.empty_like(points)
        for f, mat in ((0, self.floor), (1, self.walls), (2, self.ceiling)):
            idx = (face == f).nonzero()[:, 0]
            if idx.numel():
                out[idx] = mat.albedo(points[idx])
        return out

    def materials(self) -> list[Material]:
        return [self.floor, self.walls, self.ceiling]


@dataclass(eq=False)
class ProceduralObject:
    """An SDF shape with per-part materials in the world frame (z up, world units).

    Attributes:
        root: SDF tree mapping world points to signed distance (1-Lipschitz, see ``sdf``).
        materials: materials indexed by the leaves' ``material`` field.
        bbox_min, bbox_max: an axis-aligned box that contains the whole shape (conservative).
        room: the environment of a scene (``None`` for a floating object); ``sdf`` and the
            ground-truth mesh cover the objects only, the renderer adds the room.
        info: how it was made: kind, styles, complexity, ...
    """

    root: SdfNode
    materials: list[Material]
    bbox_min: Vec3
    bbox_max: Vec3
    room: Room | None = None
    info: dict = field(default_factory=dict)
    _grids: dict = field(default_factory=dict, repr=False)  # tracer grids per (device, resolution)
    _surface_nodes: tuple[Tensor, float] | None = field(default=None, repr=False)  # see occupied_box

    def __post_init__(self):
        self.leaves = self.root.leaves()
        for i, leaf in enumerate(self.leaves):
            leaf.index = i
        self._leaf_material = torch.tensor([leaf.material for leaf in self.leaves], dtype=torch.int64)

    @property
    def n_parts(self) -> int:
        """Primitive leaves in the tree (cutters included)."""
        return len(self.leaves)

    @property
    def center(self) -> Vec3:
        return tuple((a + b) / 2 for a, b in zip(self.bbox_min, self.bbox_max))

    @property
    def radius(self) -> float:
        """Radius of the bounding box's circumscribed sphere about ``center``."""
        return 0.5 * math.dist(self.bbox_min, self.bbox_max)

    def sdf(self, points: Tensor) -> Tensor:
        """Signed distance ``[P]`` (negative inside, world units) at world ``points [P, 3]``."""
        return self.root.distance(points)

    def normals(self, points: Tensor, eps: float = 5e-4, with_sdf: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Unit outward normals ``[P, 3]``: tetrahedral central differences of the SDF, step ``eps``.
        With ``with_sdf`` also the SDF ``[P]`` estimated as the mean of the four samples (error
        O(eps^2 * curvature))."""
        k = torch.tensor([[1.0, -1.0, -1.0], [-1.0, -1.0, 1.0], [-1.0, 1.0, -1.0], [1.0, 1.0, 1.0]],
                         dtype=points.dtype, device=points.device)
        P = points.shape[0]
        d = self.sdf((points[None] + eps * k[:, None]).reshape(-1, 3)).reshape(4, P)
        g = d[0, :, None] * k[0] + d[1, :, None] * k[1] + d[2, :, None] * k[2] + d[3, :, None] * k[3]
        if with_sdf:
            return normalize(g), (d[0] + d[1] + d[2] + d[3]) * 0.25
        return normalize(g)

    def surface_material(self, points: Tensor) -> tuple[Tensor, Tensor]:
        """Material index ``[P]`` and material-frame points ``[P, 3]`` at (near-)surface points."""
        f = self.root.query(to_pts(points), full=True)
        return self._leaf_material.to(points.device)[f.leaf], f.local.t()

    def albedo(self, points: Tensor) -> Tensor:
        """Albedo ``[P, 3]`` in [0, 1] at (near-)surface world points ``[P, 3]``."""
        return self.shading_params(points)[0]

    def shading_params(self, at: Tensor | tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """``albedo [P, 3]``, specular strength ``[P]`` and Blinn-Phong exponent ``[P]`` (int64) at
        (near-)surface world points ``[P, 3]``, or at ``(leaf index [P], leaf-frame points [P, 3])``."""
        if isinstance(at, Tensor):
            mat, local = self.surface_material(at)
        else:
            mat, local = self._leaf_material.to(at[0].device)[at[0]], at[1]
        albedo = torch.zeros_like(local)
        spec = torch.zeros_like(local[:, 0])
        shin = torch.zeros_like(mat)
        for m in torch.unique(mat).tolist():
            idx = (mat == m).nonzero()[:, 0]
            material = self.materials[m]
            albedo[idx] = material.albedo(local[idx])
            spec[idx] = material.specular
            shin[idx] = material.shininess
        return albedo, spec, shin

    def grid(self, device: str | torch.device = "cpu", res: int | None = None) -> SdfGrid:
        """The tracer's SDF grid over the (padded) bounding box, built once per device and cached
        (``res`` nodes on the longest side, default ``TRACE_GRID_RES``)."""
        res = res or TRACE_GRID_RES
        key = (str(torch.device(device)), res)
        if key not in self._grids:
            pad = 2.5 * max(b - a for a, b in zip(self.bbox_min, self.bbox_max)) / (res - 1)
            lo = tuple(a - pad for a in self.bbox_min)
            hi = tuple(b + pad for b in self.bbox_max)
            self._grids[key] = SdfGrid.build(self.sdf, lo, hi, res, device=device)
        return self._grids[key]


# ---- building ---------------------------------------------------------------------------------


def occupied_box(node: SdfNode, res: int = 48) -> tuple[Vec3, Vec3, Tensor, float]:
    """A box that surely contains ``node``'s shape: grid nodes within half a cell diagonal of the
    surface (every surface point has one), grown by that half diagonal. Also returns those nodes
    ``[M, 3]`` and the half diagonal."""
    (cx, cy, cz), r = node.bound
    lo, hi = (cx - r, cy - r, cz - r), (cx + r, cy + r, cz + r)
    pts, _, h, _ = SdfGrid.nodes(lo, hi, res)
    d = torch.cat([node.distance(pts[i : i + 65536]) for i in range(0, pts.shape[0], 65536)])
    margin = 0.5 * math.sqrt(3) * h
    near = pts[d <= margin]
    if near.shape[0] == 0:
        return lo, hi, near, margin
    return tuple((near.amin(0) - margin).tolist()), tuple((near.amax(0) + margin).tolist()), near, margin


def reaches_inside(node: SdfNode, near: Tensor, margin: float, steps: int = 8, max_starts: int = 4096) -> bool:
    """Whether Newton steps on the SDF, started from the near-surface grid nodes ``near [M, 3]``,
    find a point with negative distance: the shape has an inside.

    ``occupied_box`` keeps nodes within ``margin`` of the surface, so a boolean tree whose SDF only
    dips close to zero (a subtraction that removed everything) passes it; this test does not. From
    a node near a real surface one step along the normal (by the distance, plus a sliver to land
    past the surface) is enough; a few more cover the lower-bound SDFs of smooth and boolean nodes.
    Deterministic (no random draws), so it changes nothing for shapes that have an inside."""
    if near.shape[0] == 0:
        return False
    p = near
    d = torch.cat([node.distance(p[i : i + 65536]) for i in range(0, p.shape[0], 65536)])
    if bool((d < 0).any()):
        return True
    if p.shape[0] > max_starts:  # the starts closest to the surface
        keep = d.topk(max_starts, largest=False).indices
        p, d = p[keep], d[keep]
    eps = 0.02 * margin
    k = torch.tensor([[1.0, -1.0, -1.0], [-1.0, -1.0, 1.0], [-1.0, 1.0, -1.0], [1.0, 1.0, 1.0]], dtype=p.dtype)
    for _ in range(steps):
        s = node.distance((p[None] + eps * k[:, None]).reshape(-1, 3)).reshape(4, -1)
        g = (s[:, :, None] * k[:, None]).sum(0)  # tetrahedral central differences: the SDF's gradient
        n = g / g.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        p = p - (d + 0.05 * margin)[:, None] * n
        d = node.distance(p)
        if bool((d < 0).any()):
            return True
    return False


def _normalised(root: SdfNode, radius: float) -> tuple[SdfNode, Vec3, Vec3, tuple[Tensor, float]] | None:
    """Centre the shape's box at the origin and scale the shape into the sphere of ``radius``
    (``None`` if the shape is empty, has no inside (``reaches_inside``) or is smaller than a few
    grid cells). Also returns the near-surface grid nodes of ``occupied_box`` and their margin, in
    the new frame."""
    lo, hi, near, margin = occupied_box(root)
    if near.shape[0] < 8 or (near.amax(0) - near.amin(0)).max() < 4 * margin:
        return None
    if not reaches_inside(root, near, margin):
        return None
    c = [(a + b) / 2 for a, b in zip(lo, hi)]
    extent = float((near - torch.tensor(c)).norm(dim=-1).max()) + margin
    s = radius / extent
    node = Similarity.compose(root, rt.IDENTITY, tuple(-v * s for v in c), s)
    nodes = ((near - torch.tensor(c)) * s, margin * s)
    return node, tuple((a - m) * s for a, m in zip(lo, c)), tuple((b - m) * s for b, m in zip(hi, c)), nodes


def lowest_z(obj: ProceduralObject, res: int = 48, steps: int = 48) -> float:
    """Height of the object's lowest surface point: vertical rays are traced upwards from just below
    the lowest grid nodes near the surface (``occupied_box``), one ray per such node."""
    near, margin = obj._surface_nodes if obj._surface_nodes is not None else occupied_box(obj.root, res)[2:]
    if near.shape[0] == 0:
        return obj.bbox_min[2]
    z_lo = float(near[:, 2].min())
    start = near[near[:, 2] < z_lo + 2 * margin]
    x, y = start[:, 0].contiguous(), start[:, 1].contiguous()
    z = torch.full_like(x, z_lo - 2 * margin)
    best = z_lo - margin  # a lower bound if no ray converges
    idx = torch.arange(x.shape[0])
    hits = []
    for _ in range(steps):
        d = obj.root.query(torch.stack([x[idx], y[idx], z[idx]])).d
        done = d < 1e-5
        hits.append(z[idx][done])
        z[idx] = z[idx] + d.clamp_min(0)
        idx = idx[~done & (z[idx] < z_lo + 4 * margin)]
        if idx.numel() == 0:
            break
    found = torch.cat(hits)
    return float(found.min()) if found.numel() else best


def random_object(gen: torch.Generator, complexity: float | None = None, radius: float = OBJECT_RADIUS) -> ProceduralObject:
    """A random object centred at the origin, inside the sphere of ``radius``.

    ``complexity`` in [0, 1] (default: drawn, skewed towards simple shapes) sets the number of
    parts (1 to ~30) and the likely styles (see ``shapes``).
    """
    c = rt.uniform(gen) ** 1.3 if complexity is None else float(min(max(complexity, 0.0), 1.0))
    for _ in range(20):  # a random boolean tree can come out empty: draw again (deterministically)
        n = max(1, round(1 + 29 * c * rt.uniform(gen, 0.6, 1.0)))
        weights = style_weights(c)
        style = rt.choice(gen, list(weights), list(weights.values()))
        n_materials = rt.randint(gen, 1, max(1, min(4, 1 + n // 4)))
        root = STYLES[style](Builder(gen, n_materials), n)
        if style in ("structure", "vessel"):  # stand upright, turned about z
            root = Similarity.compose(root, rt.axis_angle((0, 0, 1), rt.uniform(gen, 0, 2 * math.pi)))
        elif rt.chance(gen, 0.5):
            root = Similarity.compose(root, rt.random_rotation(gen))
        placed = _normalised(root, radius)
        if placed is not None:
            break
    else:
        style, n_materials, placed = "blob", 1, _normalised(Sphere(radius=radius), radius)
    root, lo, hi, nodes = placed
    palette = random_palette(gen, 4)
    feature = rt.log_uniform(gen, 0.05, 0.35) * radius / OBJECT_RADIUS
    materials = [random_material(gen, palette, feature) for _ in range(n_materials)]
    return ProceduralObject(root, materials, lo, hi, info={"kind": "object", "style": style, "complexity": c},
                            _surface_nodes=nodes)


def random_room(gen: torch.Generator) -> Room:
    half = rt.uniform(gen, 3.0, 6.0)
    pal = random_palette(gen, 4)
    floor = random_material(gen, pal, rt.log_uniform(gen, 0.15, 0.8))
    walls = random_material(gen, pal, rt.log_uniform(gen, 0.3, 1.5))
    ceiling = random_material(gen, pal, 1.0)
    return Room(half, half * rt.uniform(gen, 0.7, 1.3), rt.uniform(gen, 2.5, 5.0), floor, walls, ceiling,
                kind=rt.choice(gen, ["box", "dome"], [0.7, 0.3]))


def random_scene(gen: torch.Generator, max_objects: int = 5) -> ProceduralObject:
    """1 to ``max_objects`` random objects standing on the textured floor of a random room.

    The objects stand within about 1.6 units of the origin; ``bbox_*`` bound the objects only.
    """
    room = random_room(gen)
    n = rt.randint(gen, 1, max_objects)
    placed: list[tuple[float, float, float]] = []  # x, y, footprint radius
    parts, materials, lo, hi, styles, complexities = [], [], [1e9] * 3, [-1e9] * 3, [], []
    for i in range(n):
        obj = random_object(gen, complexity=rt.uniform(gen, 0.0, 0.7))
        s = rt.uniform(gen, 0.3, 0.65) if i else rt.uniform(gen, 0.5, 0.8)
        foot = s * 0.5 * math.hypot(obj.bbox_max[0] - obj.bbox_min[0], obj.bbox_max[1] - obj.bbox_min[1])
        for _ in range(30):  # rejection sampling of a free spot on the floor
            x, y = (rt.uniform(gen, -1.6, 1.6), rt.uniform(gen, -1.6, 1.6)) if i else (0.0, 0.0)
            if all(math.hypot(x - px, y - py) > foot + pr for px, py, pr in placed):
                break
        else:
            continue
        placed.append((x, y, foot))
        for leaf in obj.leaves:
            leaf.material += len(materials)
        materials += obj.materials
        ang = rt.uniform(gen, 0, 2 * math.pi)
        z0 = lowest_z(obj)
        t = (x, y, -s * z0)  # resting on the floor
        parts.append(Similarity.compose(obj.root, rt.axis_angle((0, 0, 1), ang), t, s))
        for sx in (obj.bbox_min[0], obj.bbox_max[0]):  # box of the turned box
            for sy in (obj.bbox_min[1], obj.bbox_max[1]):
                px = s * (math.cos(ang) * sx - math.sin(ang) * sy) + x
                py = s * (math.sin(ang) * sx + math.cos(ang) * sy) + y
                lo[0], hi[0], lo[1], hi[1] = min(lo[0], px), max(hi[0], px), min(lo[1], py), max(hi[1], py)
        lo[2], hi[2] = min(lo[2], s * (obj.bbox_min[2] - z0)), max(hi[2], s * (obj.bbox_max[2] - z0))
        styles.append(obj.info["style"])
        complexities.append(obj.info["complexity"])
    root = union_tree(parts)
    info = {"kind": "scene", "styles": styles, "complexity": complexities, "n_objects": len(parts), "room": room.kind}
    return ProceduralObject(root, materials, tuple(lo), tuple(hi), room=room, info=info)
