"""Small helpers for drawing random parameters from an explicit ``torch.Generator`` (never global state)."""

from __future__ import annotations

import math

import torch

Mat3 = tuple[tuple[float, float, float], tuple[float, float, float], tuple[float, float, float]]
Vec3 = tuple[float, float, float]
IDENTITY: Mat3 = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))


def uniform(gen: torch.Generator, lo: float = 0.0, hi: float = 1.0) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=gen))


def log_uniform(gen: torch.Generator, lo: float, hi: float) -> float:
    return math.exp(uniform(gen, math.log(lo), math.log(hi)))


def randint(gen: torch.Generator, lo: int, hi: int) -> int:
    """Integer in [lo, hi] inclusive."""
    return lo + int(torch.randint(hi - lo + 1, (), generator=gen))


def chance(gen: torch.Generator, p: float) -> bool:
    return uniform(gen) < p


def choice(gen: torch.Generator, options: list, weights: list[float] | None = None):
    w = torch.tensor(weights if weights is not None else [1.0] * len(options), dtype=torch.float64)
    return options[int(torch.multinomial(w, 1, generator=gen))]


def unit_vector(gen: torch.Generator) -> Vec3:
    while True:
        v = [float(x) for x in torch.randn(3, generator=gen)]
        n = math.sqrt(sum(x * x for x in v))
        if n > 1e-3:
            return tuple(x / n for x in v)


def normalize(v) -> Vec3:
    n = math.sqrt(sum(x * x for x in v))
    return tuple(x / n for x in v)


def cross(a, b) -> Vec3:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def matmul(A: Mat3, B: Mat3) -> Mat3:
    return tuple(tuple(sum(A[i][k] * B[k][j] for k in range(3)) for j in range(3)) for i in range(3))


def apply(R: Mat3, v) -> Vec3:
    return tuple(sum(R[i][k] * v[k] for k in range(3)) for i in range(3))


def axis_angle(axis, angle: float) -> Mat3:
    x, y, z = normalize(axis)
    c, s, C = math.cos(angle), math.sin(angle), 1 - math.cos(angle)
    return ((c + x * x * C, x * y * C - z * s, x * z * C + y * s),
            (y * x * C + z * s, c + y * y * C, y * z * C - x * s),
            (z * x * C - y * s, z * y * C + x * s, c + z * z * C))


def random_rotation(gen: torch.Generator) -> Mat3:
    """Uniform random rotation (from a normalised Gaussian quaternion)."""
    q = [float(x) for x in torch.randn(4, generator=gen)]
    n = math.sqrt(sum(x * x for x in q)) or 1.0
    w, x, y, z = (v / n for v in q)
    return ((1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)),
            (2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)),
            (2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)))


def z_to(u: Vec3, spin: float = 0.0) -> Mat3:
    """Rotation taking local +z to unit direction ``u`` (then turned by ``spin`` about it)."""
    u = normalize(u)
    helper = (1.0, 0.0, 0.0) if abs(u[0]) < 0.9 else (0.0, 1.0, 0.0)
    a = normalize(cross(helper, u))
    b = cross(u, a)
    R = ((a[0], b[0], u[0]), (a[1], b[1], u[1]), (a[2], b[2], u[2]))
    return matmul(R, axis_angle((0.0, 0.0, 1.0), spin)) if spin else R


def axis_aligned_rotation(gen: torch.Generator, jitter_deg: float = 0.0) -> Mat3:
    """One of the 24 rotations of the cube, optionally jittered by a small random rotation."""
    up = choice(gen, [(1.0, 0.0, 0.0), (-1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, 1.0), (0.0, 0.0, -1.0)])
    R = z_to(up, spin=math.pi / 2 * randint(gen, 0, 3))
    if jitter_deg > 0:
        R = matmul(axis_angle(unit_vector(gen), math.radians(uniform(gen, -jitter_deg, jitter_deg))), R)
    return R
