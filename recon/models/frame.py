"""The model's canonical frame: the input world moved and scaled so the observed region is a unit ball.

Networks see posed cameras in a frame where the ball every input camera sees whole (found from
the poses alone, ``recon.core.geometry.scene_sphere``) is centred at the origin with radius 1;
axes keep the world's orientation. Everything the model returns in that frame goes back to the
input's world frame and units through ``CanonicalFrame.gaussians_to_world``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from recon.core.geometry import frustum_plane_normals, scene_sphere
from renderer import Cameras, Gaussians


@dataclass
class CanonicalFrame:
    """``x_canonical = (x_world - center) / scale``.

    Attributes:
        center: [3] world point, world units.
        scale: world units per canonical unit (> 0).
        converged: whether the camera axes met in front of the cameras (object rigs); False for
            forward-facing rigs, where the ball is a rough guess.
    """

    center: Tensor
    scale: float
    converged: bool = True

    @classmethod
    def from_cameras(cls, cameras: Cameras) -> CanonicalFrame:
        """Several cameras: the ball of ``scene_sphere``. One camera fixes no ball, so the object is
        taken to sit on the optical axis at the point nearest the world origin (where object rigs and
        the single-image canonical camera look), and the ball is the largest one the frustum holds there."""
        if len(cameras) == 1:
            c2w = cameras.c2w[0].double()
            o, d = c2w[:3, 3], c2w[:3, 2] / c2w[:3, 2].norm()
            t = float((-o * d).sum())
            t = t if t > 1e-6 else float(o.norm().clamp_min(1e-6))  # origin behind: take its distance
            inward = frustum_plane_normals(cameras)[0].double()  # [4, 3] camera frame
            radius = t * float(inward[:, 2].min())
            return cls((o + t * d).float(), max(radius, 1e-6), True)
        s = scene_sphere(cameras)
        return cls(s.center.float(), float(s.radius), bool(s.converged))

    @classmethod
    def identity(cls, device=None) -> CanonicalFrame:
        return cls(torch.zeros(3, device=device), 1.0, True)

    def cameras_to_canonical(self, cameras: Cameras) -> Cameras:
        c2w = cameras.c2w.clone()
        c2w[:, :3, 3] = (c2w[:, :3, 3] - self.center.to(c2w)) / self.scale
        return Cameras(c2w, cameras.K.clone(), cameras.width, cameras.height)

    def points_to_canonical(self, points: Tensor) -> Tensor:
        return (points - self.center.to(points)) / self.scale

    def points_to_world(self, points: Tensor) -> Tensor:
        return points * self.scale + self.center.to(points)

    def gaussians_to_world(self, g: Gaussians) -> Gaussians:
        return g.transform(scale=self.scale, t=self.center.to(g.dtype))

    def to_dict(self) -> dict:
        return {"center": [float(v) for v in self.center], "scale": self.scale, "converged": self.converged}
