"""Elementwise math helpers that give the same bits whatever the thread count.

ATen splits large elementwise ops across threads and finishes each thread's share with a scalar
tail loop. Basic IEEE ops (+ - * / sqrt, min/max, floor, comparisons) round identically in the
vector and scalar paths; transcendental functions (sin, cos, exp, pow) and fused ops (addcmul,
lerp, matmul) need not. The data engine promises bit-identical items for a seed whether it runs in
the main process (2 threads) or a DataLoader worker (1 thread), so its per-point math is built from
the basic ops only: ``length``, ``dot``, ``normalize``, ``sincos`` (a polynomial), ``rotate``
(explicit 3x3 products) below. Small per-object parameter computations (python floats) may use
anything.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def dot(a: Tensor, b: Tensor) -> Tensor:
    """Row-wise dot product of ``[..., 3]`` tensors -> ``[...]``, summed in a fixed order."""
    return a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1] + a[..., 2] * b[..., 2]


def length(a: Tensor) -> Tensor:
    """Euclidean length of ``[..., 3]`` rows -> ``[...]``."""
    return dot(a, a).sqrt()


def length2(x: Tensor, y: Tensor) -> Tensor:
    """``sqrt(x^2 + y^2)`` elementwise."""
    return (x * x + y * y).sqrt()


def normalize(a: Tensor, eps: float = 1e-12) -> Tensor:
    """Unit rows of ``[..., 3]``; zero rows stay zero."""
    return a / length(a).clamp_min(eps)[..., None]


def clamp01(x: Tensor) -> Tensor:
    return x.clamp(0.0, 1.0)


def mix(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """``a + t (b - a)`` without a fused kernel."""
    return a + t * (b - a)


def smoothstep(t: Tensor) -> Tensor:
    """Cubic Hermite fade ``3t^2 - 2t^3`` for t in [0, 1]."""
    return t * t * (3.0 - 2.0 * t)


_HALF_PI = math.pi / 2


def sincos(x: Tensor) -> tuple[Tensor, Tensor]:
    """``(sin x, cos x)`` to ~1e-7 absolute from basic ops only (quadrant reduction + Taylor)."""
    k = torch.round(x * (1.0 / _HALF_PI))
    r = x - k * _HALF_PI  # [-pi/4, pi/4]
    r2 = r * r
    s = r + r * r2 * (-1.0 / 6 + r2 * (1.0 / 120 + r2 * (-1.0 / 5040 + r2 * (1.0 / 362880))))
    c = 1.0 + r2 * (-0.5 + r2 * (1.0 / 24 + r2 * (-1.0 / 720 + r2 * (1.0 / 40320))))
    q = torch.remainder(k, 4.0)  # quadrant 0..3, exact for |k| < 2^24
    odd = torch.remainder(q, 2.0) == 1
    sin, cos = torch.where(odd, c, s), torch.where(odd, s, c)
    return torch.where(q >= 2, -sin, sin), torch.where((q == 1) | (q == 2), -cos, cos)


def rotate(p: Tensor, R: Tensor) -> Tensor:
    """``p @ R.T`` for points ``[P, 3]`` and one rotation ``[3, 3]``, as explicit products."""
    x, y, z = p[:, 0:1], p[:, 1:2], p[:, 2:3]
    return x * R[:, 0] + y * R[:, 1] + z * R[:, 2]


def rotate_t(p: Tensor, R: Tensor) -> Tensor:
    """``p @ R`` (the inverse rotation applied to rows), as explicit products."""
    x, y, z = p[:, 0:1], p[:, 1:2], p[:, 2:3]
    return x * R[0] + y * R[1] + z * R[2]


def int_pow(x: Tensor, n: int) -> Tensor:
    """``x ** n`` for a small positive integer ``n`` by repeated squaring."""
    out, base = None, x
    while n:
        if n & 1:
            out = base if out is None else out * base
        n >>= 1
        if n:
            base = base * base
    return out if out is not None else torch.ones_like(x)
