"""Signed distance functions as small trees of dataclass nodes, evaluated in torch.

This module gathers the public names of ``sdf_core`` (base class, results, smooth min/max),
``primitives`` (leaf shapes) and ``operations`` (booleans and domain operations).

Every node maps points to a signed distance (negative inside, world units of the node's input
frame) with ``node.distance(points [P, 3]) -> [P]``. Parameters are python floats, so one tree works
on any device and dtype (float32 throughout the engine). Axial primitives use their local z axis.

Exactness. Every node is 1-Lipschitz, so ``|sdf(p)|`` never exceeds the true distance to the
node's surface and sphere tracing may step the full value (step factor 1). Some nodes are exact
Euclidean distances, the others only such lower bounds:

- exact: Sphere, Box, RoundBox, Torus, Capsule, Cylinder, Cone, Octahedron, HexPrism;
  Similarity of an exact child (rotation, translation, uniform scale ``s``: ``s * f(q / s)``);
  Round and Onion of an exact child; Mirror of an exact child lying in the kept half-space;
  Union outside the shape (a bound inside).
- bounds: Ellipsoid (``(|p / r| - 1) * min(r)``, exact only for spheres); Subtract, Intersect (a
  bound near the carved edges); smooth versions of all boolean ops (the polynomial smooth
  min/max mixes the gradients convexly, so the result stays 1-Lipschitz); Twist and Bend (the
  child distance divided by the Lipschitz constant of the deformation over the node's bounding
  sphere, and capped there by the sphere's distance, see ``_Deform``).

A renderer that wants a true step factor < 1 for its own reasons can still use one; it is never
needed for safety here.

Bounding spheres (``node.bound -> ((cx, cy, cz), r)`` in the node's input frame) contain the
shape. ``Union`` and ``Subtract`` use them to skip children that cannot change the result at a
point (``child >= bound distance >= current + k``); the skip is exact, not an approximation.

Layout. Internally points travel as one contiguous ``[3, P]`` tensor (x, y, z rows): rows are
contiguous for per-axis maths, whole-block ops cover all three axes at once, and a similarity
transform is a single ``addmm``. ``eval`` takes the usual ``[P, 3]``.

Materials. ``node.query(pts, full=True)`` also returns, per point, the index of the primitive
leaf whose surface forms the boundary there and the point in that leaf's frame (scaled to world
units) for solid textures. The rule: union -> the child with the smaller distance; intersection
-> the larger; subtraction -> always the body being cut (cut faces show its interior material);
smooth ops decide by the same comparison of the unsmoothed values.
"""

from recon.data.procedural.operations import (
    Bend,
    Intersect,
    Mirror,
    Onion,
    Round,
    Similarity,
    Subtract,
    Twist,
    Union,
    union_tree,
)
from recon.data.procedural.primitives import (
    PRIMITIVES,
    Box,
    Capsule,
    Cone,
    Cylinder,
    Ellipsoid,
    HexPrism,
    Octahedron,
    Primitive,
    RoundBox,
    Sphere,
    Torus,
)
from recon.data.procedural.sdf_core import (
    CULL_MIN_POINTS,
    IDENTITY,
    Field,
    SdfNode,
    smax,
    smin,
    to_pts,
)

__all__ = [
    "CULL_MIN_POINTS", "IDENTITY", "PRIMITIVES", "Bend", "Box", "Capsule", "Cone", "Cylinder", "Ellipsoid", "Field",
    "HexPrism", "Intersect", "Mirror", "Octahedron", "Onion", "Primitive", "Round", "RoundBox", "SdfNode", "Similarity",
    "Sphere", "Subtract", "Torus", "Twist", "Union", "smax", "smin", "to_pts", "union_tree",
]
