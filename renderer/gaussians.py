"""3D Gaussians with activated (physical) parameters.

Raw network outputs become these values in one adapter (``recon.models.adapter``); everything
downstream (renderer, IO, export) sees only the fields below.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from kornia.geometry.conversions import (
    quaternion_to_rotation_matrix,
    rotation_matrix_to_quaternion,
)
from torch import Tensor

from renderer.errors import ReconError
from renderer.sh import SH_C0, num_sh_bases, rotate_sh, sh_degree_from_bases


def quat_wxyz_multiply(a: Tensor, b: Tensor) -> Tensor:
    """Hamilton product ``a * b`` of quaternions ``[..., 4]`` in (w, x, y, z) order."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        dim=-1,
    )


def covariances(quats_wxyz: Tensor, scales: Tensor) -> Tensor:
    """World covariances ``[N, 3, 3] = R S S^T R^T`` from unit quaternions and scales."""
    R = quaternion_to_rotation_matrix(torch.nn.functional.normalize(quats_wxyz, dim=-1))
    M = R * scales[..., None, :]
    return M @ M.transpose(-1, -2)


@dataclass
class Gaussians:
    """N 3D Gaussians in world units.

    Attributes:
        means: [N, 3] centres, world frame.
        quats_wxyz: [N, 4] unit rotation quaternions (w, x, y, z), local-to-world.
        scales: [N, 3] standard deviations along the local axes, world units, > 0.
        opacities: [N] in (0, 1).
        sh: [N, K, 3] spherical-harmonic colour coefficients, K = (degree+1)^2, DC first
            (colour = SH_C0 * sh[:, 0] + 0.5 for degree 0; see ``renderer.sh``).
    """

    means: Tensor
    quats_wxyz: Tensor
    scales: Tensor
    opacities: Tensor
    sh: Tensor

    def __post_init__(self):
        n = self.means.shape[0]
        expected = {
            "means": (n, 3),
            "quats_wxyz": (n, 4),
            "scales": (n, 3),
            "opacities": (n,),
        }
        for name, shape in expected.items():
            if tuple(getattr(self, name).shape) != shape:
                raise ReconError(f"Gaussians.{name} must have shape {shape}, got {tuple(getattr(self, name).shape)}")
        if self.sh.ndim != 3 or self.sh.shape[0] != n or self.sh.shape[2] != 3:
            raise ReconError(f"Gaussians.sh must have shape ({n}, K, 3), got {tuple(self.sh.shape)}")
        try:
            sh_degree_from_bases(self.sh.shape[1])
        except ValueError as e:
            raise ReconError(f"Gaussians.sh: {e}") from None

    # ---- construction -------------------------------------------------------------------------

    @classmethod
    def from_rgb(
        cls,
        means: Tensor,
        rgb: Tensor,  # [N, 3] colour in [0, 1]
        scales: Tensor,
        opacities: Tensor,
        quats_wxyz: Tensor | None = None,
        sh_degree: int = 0,
    ) -> Gaussians:
        """Gaussians of view-independent colour ``rgb`` (higher SH bands zero)."""
        n = means.shape[0]
        if quats_wxyz is None:
            quats_wxyz = torch.zeros(n, 4, dtype=means.dtype, device=means.device)
            quats_wxyz[:, 0] = 1.0
        sh = torch.zeros(n, num_sh_bases(sh_degree), 3, dtype=means.dtype, device=means.device)
        sh[:, 0] = (rgb - 0.5) / SH_C0
        return cls(means, quats_wxyz, scales, opacities, sh)

    @classmethod
    def empty(cls, sh_degree: int = 0, dtype=torch.float32) -> Gaussians:
        z = lambda *s: torch.zeros(*s, dtype=dtype)
        return cls(z(0, 3), z(0, 4), z(0, 3), z(0), z(0, num_sh_bases(sh_degree), 3))

    # ---- properties ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return self.means.shape[0]

    @property
    def sh_degree(self) -> int:
        return sh_degree_from_bases(self.sh.shape[1])

    @property
    def rgb_dc(self) -> Tensor:
        """[N, 3] view-independent base colour (SH DC term), not clamped."""
        return self.sh[:, 0] * SH_C0 + 0.5

    @property
    def device(self) -> torch.device:
        return self.means.device

    @property
    def dtype(self) -> torch.dtype:
        return self.means.dtype

    def covariances(self) -> Tensor:
        """[N, 3, 3] world covariances."""
        return covariances(self.quats_wxyz, self.scales)

    def _map(self, fn) -> Gaussians:
        return Gaussians(**{f.name: fn(getattr(self, f.name)) for f in fields(self)})

    # ---- batch edits --------------------------------------------------------------------------

    def __getitem__(self, idx) -> Gaussians:
        """Index or prune by integer indices, slice or boolean mask."""
        return self._map(lambda t: t[idx])

    @staticmethod
    def cat(items: list[Gaussians]) -> Gaussians:
        degree = max(g.sh_degree for g in items)
        items = [g.with_sh_degree(degree) for g in items]
        return Gaussians(**{f.name: torch.cat([getattr(g, f.name) for g in items]) for f in fields(Gaussians)})

    def to(self, device=None, dtype=None) -> Gaussians:
        return self._map(lambda t: t.to(device=device, dtype=dtype))

    def detach(self) -> Gaussians:
        return self._map(lambda t: t.detach())

    def clone(self) -> Gaussians:
        return self._map(lambda t: t.clone())

    def with_sh_degree(self, degree: int) -> Gaussians:
        """Pad higher bands with zeros or drop them."""
        k = num_sh_bases(degree)
        if k <= self.sh.shape[1]:
            sh = self.sh[:, :k]
        else:
            pad = torch.zeros(len(self), k - self.sh.shape[1], 3, dtype=self.sh.dtype, device=self.sh.device)
            sh = torch.cat([self.sh, pad], dim=1)
        return Gaussians(self.means, self.quats_wxyz, self.scales, self.opacities, sh)

    def transform(self, scale: float = 1.0, R: Tensor | None = None, t: Tensor | None = None) -> Gaussians:
        """Apply the similarity ``x -> scale * R @ x + t`` to positions, shapes and view-dependent colour.

        ``R [3, 3]`` is a proper rotation, ``t [3]`` a translation in the new world's units.
        """
        if R is None:
            R = torch.eye(3, dtype=self.dtype, device=self.device)
        if t is None:
            t = torch.zeros(3, dtype=self.dtype, device=self.device)
        R = R.to(self.dtype)
        if scale <= 0:
            raise ReconError(f"similarity scale must be positive, got {scale}")
        means = scale * self.means @ R.T + t.to(self.dtype)
        q_R = rotation_matrix_to_quaternion(R.double()[None].contiguous())[0].to(self.dtype)
        quats = quat_wxyz_multiply(q_R.expand_as(self.quats_wxyz), self.quats_wxyz)
        sh = rotate_sh(self.sh, R) if self.sh_degree > 0 else self.sh.clone()
        return Gaussians(means, quats, self.scales * scale, self.opacities.clone(), sh)

    def validate(self, source: str = "gaussians") -> Gaussians:
        """Raise ``ReconError`` naming ``source`` if values are non-finite or out of range."""
        for f in fields(self):
            t = getattr(self, f.name)
            if not torch.isfinite(t).all():
                raise ReconError(f"{source}: {f.name} has NaN or infinite values")
        if len(self) and (self.scales <= 0).any():
            raise ReconError(f"{source}: scales must be positive")
        if len(self) and ((self.opacities < 0) | (self.opacities > 1)).any():
            raise ReconError(f"{source}: opacities must lie in [0, 1]")
        if len(self) and (self.quats_wxyz.norm(dim=-1) < 1e-12).any():
            raise ReconError(f"{source}: a rotation quaternion is zero")
        return self
