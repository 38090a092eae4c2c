"""Random camera rigs (OpenCV cameras, world z up) for procedural objects and scenes.

Input and target cameras of an item are drawn from the same distribution (one call for all views,
then split), so a model never learns that targets look different from inputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from recon.data.procedural import random_tools as rt
from renderer import Cameras
from renderer.cameras import focal_from_fov, intrinsics_matrix


def _c2w(eye, target, roll: float, up=(0.0, 0.0, 1.0)) -> torch.Tensor:
    """Camera at ``eye`` looking at ``target``, world ``up`` pointing image-up, then rolled by
    ``roll`` radians about the optical axis. Float64 maths, float32 result ``[4, 4]``."""
    z = rt.normalize(tuple(t - e for t, e in zip(target, eye)))
    x = rt.cross(z, up)
    if math.sqrt(sum(v * v for v in x)) < 1e-6:
        x = rt.cross(z, (1.0, 0.0, 0.0))
    x = rt.normalize(x)
    y = rt.cross(z, x)
    c, s = math.cos(roll), math.sin(roll)
    x, y = tuple(c * a + s * b for a, b in zip(x, y)), tuple(-s * a + c * b for a, b in zip(x, y))
    M = torch.eye(4, dtype=torch.float64)
    M[:3, 0], M[:3, 1], M[:3, 2], M[:3, 3] = torch.tensor(x), torch.tensor(y), torch.tensor(z), torch.tensor(eye)
    return M.float()


def object_rig(
    gen: torch.Generator,
    n: int,
    size: int = 256,  # square images, pixels
    radius: float = 0.9,  # bounding-sphere radius of the object (centred at the origin)
    fov_deg: tuple[float, float] = (30.0, 60.0),  # horizontal field of view range
    elevation_deg: tuple[float, float] = (-20.0, 65.0),
    fill: tuple[float, float] = (0.65, 1.0),  # fraction of the half-width the bounding sphere covers
    roll_deg: float = 5.0,
    jitter: float = 0.05,  # look-at point jitter, world units
) -> Cameras:
    """``n`` cameras on spheres around the origin, each with its own distance, elevation, focal
    length and a small roll, looking at (near) the origin. Azimuths are uniform."""
    c2w, K = [], []
    for _ in range(n):
        fov = math.radians(rt.uniform(gen, *fov_deg))
        # The sphere of ``radius`` spans ``fill`` of the half-width: sin(half angle) = radius / dist.
        dist = radius / math.sin(math.atan(rt.uniform(gen, *fill) * math.tan(fov / 2)))
        az = rt.uniform(gen, 0, 2 * math.pi)
        el = math.radians(rt.uniform(gen, *elevation_deg))
        eye = (dist * math.cos(el) * math.cos(az), dist * math.cos(el) * math.sin(az), dist * math.sin(el))
        target = tuple(rt.uniform(gen, -jitter, jitter) for _ in range(3))
        c2w.append(_c2w(eye, target, math.radians(rt.uniform(gen, -roll_deg, roll_deg))))
        f = focal_from_fov(fov, size)
        K.append(intrinsics_matrix(f, f, size / 2, size / 2))
    return Cameras(torch.stack(c2w), torch.stack(K), size, size)


def forward_rig(
    gen: torch.Generator,
    n: int,
    size: int = 256,
    target: tuple[float, float, float] = (0.0, 0.0, 0.4),  # what the rig looks at, world units
    distance: tuple[float, float] = (2.8, 4.2),
    elevation_deg: tuple[float, float] = (8.0, 35.0),
    fov_deg: tuple[float, float] = (45.0, 65.0),
    patch: float = 0.12,  # camera spread as a fraction of the distance (LLFF-like baseline)
    roll_deg: float = 3.0,
    inside: Callable[[tuple[float, float, float]], bool] | None = None,  # e.g. "within the room"
) -> Cameras:
    """``n`` forward-facing cameras for a scene: centres on a small patch around one viewpoint, all
    looking roughly at ``target`` (each at a jittered point), one shared field of view.

    If ``inside`` is given, the rig moves towards the target (distance x 0.9 per try) until every
    camera centre satisfies it."""
    az = rt.uniform(gen, 0, 2 * math.pi)
    el = math.radians(rt.uniform(gen, *elevation_deg))
    dist = rt.uniform(gen, *distance)
    fwd = (-math.cos(el) * math.cos(az), -math.cos(el) * math.sin(az), -math.sin(el))
    right = rt.normalize(rt.cross(fwd, (0.0, 0.0, 1.0)))
    up = rt.cross(right, fwd)
    fov = math.radians(rt.uniform(gen, *fov_deg))
    f = focal_from_fov(fov, size)
    offsets = [(rt.uniform(gen, -1, 1) * patch, rt.uniform(gen, -0.6, 0.6) * patch) for _ in range(n)]
    looks = [tuple(t + rt.uniform(gen, -0.15, 0.15) for t in target) for _ in range(n)]
    rolls = [math.radians(rt.uniform(gen, -roll_deg, roll_deg)) for _ in range(n)]
    for _ in range(40):
        centre = tuple(t - dist * f_ for t, f_ in zip(target, fwd))
        eyes = [tuple(c + dist * (a * r + b * u) for c, r, u in zip(centre, right, up)) for a, b in offsets]
        if inside is None or all(inside(e) for e in eyes):
            break
        dist *= 0.9
    c2w = [_c2w(eye, look, roll) for eye, look, roll in zip(eyes, looks, rolls)]
    K = [intrinsics_matrix(f, f, size / 2, size / 2) for _ in range(n)]
    return Cameras(torch.stack(c2w), torch.stack(K), size, size)
