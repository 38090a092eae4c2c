"""A batch of pinhole cameras in the OpenCV convention.

Frames and units, stated once for the whole package:
- Camera axes are OpenCV's: x right, y down, z forward (the camera looks down +z).
- ``c2w`` maps camera coordinates to world coordinates (4x4, rigid); ``w2c`` is its inverse.
- ``K`` is 3x3 in pixels of an image ``width`` x ``height``; pixel (i, j) covers
  [j, j+1) x [i, i+1), so its centre is at (j + 0.5, i + 0.5). This is the convention of gsplat,
  COLMAP and OpenCV's ``projectPoints`` for continuous coordinates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from renderer.errors import CameraError


def rigid_inverse(T: Tensor) -> Tensor:
    """Inverse of rigid 4x4 transforms ``[..., 4, 4]`` (R^T, -R^T t), exact for rotations."""
    R = T[..., :3, :3]
    t = T[..., :3, 3:]
    out = torch.zeros_like(T)
    out[..., :3, :3] = R.transpose(-1, -2)
    out[..., :3, 3:] = -R.transpose(-1, -2) @ t
    out[..., 3, 3] = 1.0
    return out


def intrinsics_matrix(fx, fy, cx, cy, dtype=torch.float32) -> Tensor:
    """``K [..., 3, 3]`` from focal lengths and principal point in pixels (broadcasts)."""
    fx, fy, cx, cy = torch.broadcast_tensors(*(torch.as_tensor(v, dtype=dtype) for v in (fx, fy, cx, cy)))
    K = torch.zeros(fx.shape + (3, 3), dtype=dtype)
    K[..., 0, 0], K[..., 1, 1], K[..., 0, 2], K[..., 1, 2], K[..., 2, 2] = fx, fy, cx, cy, 1.0
    return K


def focal_from_fov(fov_rad: float, size_px: int) -> float:
    """Focal length in pixels for a full field of view ``fov_rad`` across ``size_px`` pixels."""
    return 0.5 * size_px / math.tan(0.5 * fov_rad)


@dataclass
class Cameras:
    """A batch of C pinhole cameras sharing one image size.

    Attributes:
        c2w: [C, 4, 4] camera-to-world, OpenCV camera axes, world units.
        K: [C, 3, 3] intrinsics in pixels of a ``width`` x ``height`` image.
        width, height: image size in pixels.
    """

    c2w: Tensor
    K: Tensor
    width: int
    height: int

    def __post_init__(self):
        if self.c2w.ndim == 2:
            self.c2w = self.c2w[None]
        if self.K.ndim == 2:
            self.K = self.K[None]
        if self.c2w.shape[-2:] != (4, 4) or self.K.shape[-2:] != (3, 3) or self.c2w.ndim != 3:
            raise CameraError(f"cameras need c2w [C,4,4] and K [C,3,3], got {tuple(self.c2w.shape)} and {tuple(self.K.shape)}")
        if self.K.shape[0] != self.c2w.shape[0]:
            if self.K.shape[0] == 1:
                self.K = self.K.expand(self.c2w.shape[0], 3, 3).clone()
            else:
                raise CameraError(f"{self.c2w.shape[0]} poses but {self.K.shape[0]} intrinsics")
        self.width, self.height = int(self.width), int(self.height)
        if self.width <= 0 or self.height <= 0:
            raise CameraError(f"image size must be positive, got {self.width}x{self.height}")

    # ---- construction -------------------------------------------------------------------------

    @classmethod
    def from_w2c(cls, w2c: Tensor, K: Tensor, width: int, height: int) -> Cameras:
        return cls(rigid_inverse(w2c), K, width, height)

    @classmethod
    def look_at(
        cls,
        eye: Tensor,  # [C, 3] camera centres, world units
        target: Tensor,  # [C, 3] or [3] points looked at
        up: Tensor | tuple = (0.0, 0.0, 1.0),  # [3] world up; the image's y axis points against it
        fov_deg: float = 50.0,  # horizontal field of view
        width: int = 256,
        height: int = 256,
    ) -> Cameras:
        """Cameras at ``eye`` looking at ``target``, rolled so that world ``up`` is image-up."""
        eye = torch.as_tensor(eye, dtype=torch.float32).reshape(-1, 3)
        target = torch.as_tensor(target, dtype=eye.dtype).expand_as(eye)
        up = torch.as_tensor(up, dtype=eye.dtype).reshape(1, 3).expand_as(eye)
        z = torch.nn.functional.normalize(target - eye, dim=-1)
        x = torch.linalg.cross(z, up)
        degenerate = x.norm(dim=-1) < 1e-6
        if degenerate.any():  # looking straight along up: any perpendicular roll will do
            alt = torch.tensor([1.0, 0.0, 0.0], dtype=eye.dtype).expand_as(eye)
            x = torch.where(degenerate[:, None], torch.linalg.cross(z, alt), x)
        x = torch.nn.functional.normalize(x, dim=-1)
        y = torch.linalg.cross(z, x)
        c2w = torch.eye(4, dtype=eye.dtype).repeat(eye.shape[0], 1, 1)
        c2w[:, :3, 0], c2w[:, :3, 1], c2w[:, :3, 2], c2w[:, :3, 3] = x, y, z, eye
        f = focal_from_fov(math.radians(fov_deg), width)
        K = intrinsics_matrix(f, f, width / 2, height / 2, dtype=eye.dtype)
        return cls(c2w, K.expand(eye.shape[0], 3, 3).clone(), width, height)

    @classmethod
    def orbit(
        cls,
        n: int,
        radius: float = 2.5,
        elevation_deg: float = 20.0,
        center: tuple = (0.0, 0.0, 0.0),
        up: tuple = (0.0, 0.0, 1.0),
        fov_deg: float = 50.0,
        width: int = 256,
        height: int = 256,
        azimuth0_deg: float = 0.0,
    ) -> Cameras:
        """``n`` cameras evenly spaced in azimuth on a circle at ``elevation_deg`` around ``up``."""
        up_t = torch.nn.functional.normalize(torch.as_tensor(up, dtype=torch.float32), dim=0)
        # Any two unit vectors perpendicular to up span the orbit plane.
        helper = torch.tensor([1.0, 0.0, 0.0]) if abs(float(up_t[0])) < 0.9 else torch.tensor([0.0, 1.0, 0.0])
        a = torch.nn.functional.normalize(torch.linalg.cross(up_t, helper), dim=0)
        b = torch.linalg.cross(up_t, a)
        az = torch.deg2rad(torch.arange(n, dtype=torch.float32) * 360.0 / n + azimuth0_deg)
        el = math.radians(elevation_deg)
        dirs = math.cos(el) * (torch.cos(az)[:, None] * a + torch.sin(az)[:, None] * b) + math.sin(el) * up_t
        c = torch.as_tensor(center, dtype=torch.float32)
        return cls.look_at(c + radius * dirs, c, up_t, fov_deg, width, height)

    # ---- batch handling ------------------------------------------------------------------------

    def __len__(self) -> int:
        return self.c2w.shape[0]

    def __getitem__(self, idx) -> Cameras:
        if isinstance(idx, int):
            idx = [idx]
        return Cameras(self.c2w[idx], self.K[idx], self.width, self.height)

    @staticmethod
    def cat(cams: list[Cameras]) -> Cameras:
        sizes = {(c.width, c.height) for c in cams}
        if len(sizes) != 1:
            raise CameraError(f"cannot batch cameras of different image sizes {sorted(sizes)}")
        return Cameras(torch.cat([c.c2w for c in cams]), torch.cat([c.K for c in cams]), *sizes.pop())

    def to(self, device=None, dtype=None) -> Cameras:
        return Cameras(self.c2w.to(device=device, dtype=dtype), self.K.to(device=device, dtype=dtype), self.width, self.height)

    @property
    def device(self) -> torch.device:
        return self.c2w.device

    @property
    def w2c(self) -> Tensor:
        """[C, 4, 4] world-to-camera."""
        return rigid_inverse(self.c2w)

    @property
    def centers(self) -> Tensor:
        """[C, 3] camera centres in world units."""
        return self.c2w[:, :3, 3]

    @property
    def forward(self) -> Tensor:
        """[C, 3] unit optical axes (+z of the camera) in world frame."""
        return self.c2w[:, :3, 2]

    # ---- validation ----------------------------------------------------------------------------

    def validate(self, source: str = "cameras", atol: float = 1e-3) -> Cameras:
        """Raise ``CameraError`` naming ``source`` if any pose or intrinsic is unusable."""
        if not (torch.isfinite(self.c2w).all() and torch.isfinite(self.K).all()):
            bad = (~torch.isfinite(self.c2w).flatten(1).all(1) | ~torch.isfinite(self.K).flatten(1).all(1)).nonzero()
            raise CameraError(f"{source}: camera {int(bad[0])} has NaN or infinite values")
        R = self.c2w[:, :3, :3].double()
        eye = torch.eye(3, dtype=R.dtype)
        ortho_err = (R.transpose(1, 2) @ R - eye).abs().amax(dim=(1, 2))
        det = torch.linalg.det(R)
        bad = ((ortho_err > atol) | (det < 0.5)).nonzero()
        if len(bad):
            i = int(bad[0])
            raise CameraError(
                f"{source}: camera {i} rotation is not a proper rotation (det {det[i]:.3g}, orthogonality error {ortho_err[i]:.3g})"
            )
        if not torch.allclose(self.c2w[:, 3].double(), torch.tensor([0.0, 0, 0, 1], dtype=torch.float64), atol=1e-6):
            raise CameraError(f"{source}: last row of c2w must be [0, 0, 0, 1]")
        fx, fy = self.K[:, 0, 0], self.K[:, 1, 1]
        bad = ((fx <= 0) | (fy <= 0)).nonzero()
        if len(bad):
            raise CameraError(f"{source}: camera {int(bad[0])} has a non-positive focal length")
        return self

    # ---- image-space edits that keep K exact ----------------------------------------------------

    def resize(self, width: int, height: int) -> Cameras:
        """Cameras for the same views resampled to ``width`` x ``height`` (continuous coordinates scale)."""
        sx, sy = width / self.width, height / self.height
        K = self.K.clone()
        K[:, 0, :] *= sx
        K[:, 1, :] *= sy
        return Cameras(self.c2w.clone(), K, width, height)

    def crop(self, x0: int, y0: int, width: int, height: int) -> Cameras:
        """Cameras for the pixel window starting at column ``x0``, row ``y0`` of the given size."""
        K = self.K.clone()
        K[:, 0, 2] -= x0
        K[:, 1, 2] -= y0
        return Cameras(self.c2w.clone(), K, width, height)

    # ---- geometry -------------------------------------------------------------------------------

    def project(self, points_world: Tensor) -> tuple[Tensor, Tensor]:
        """Project world points ``[P, 3]`` into every camera.

        Returns ``(uv [C, P, 2] pixels, depth_z [C, P] camera z in world units)``.
        """
        w2c = self.w2c.to(points_world.dtype)
        p_cam = points_world[None] @ w2c[:, :3, :3].transpose(1, 2) + w2c[:, None, :3, 3]
        depth_z = p_cam[..., 2]
        uvw = p_cam @ self.K.to(points_world.dtype).transpose(1, 2)
        return uvw[..., :2] / uvw[..., 2:3], depth_z

    def rays(self) -> tuple[Tensor, Tensor]:
        """Per-pixel world rays through pixel centres.

        Returns ``(origins [C, H, W, 3], dirs [C, H, W, 3])``, dirs unit length, world frame.
        """
        dtype, dev = self.c2w.dtype, self.c2w.device
        v, u = torch.meshgrid(
            torch.arange(self.height, dtype=dtype, device=dev) + 0.5,
            torch.arange(self.width, dtype=dtype, device=dev) + 0.5,
            indexing="ij",
        )
        pix = torch.stack([u, v, torch.ones_like(u)], dim=-1)  # [H, W, 3]
        d_cam = pix[None] @ torch.linalg.inv(self.K).transpose(1, 2)[:, None]  # [C, H, W, 3]
        d_world = d_cam @ self.c2w[:, None, :3, :3].transpose(-1, -2)
        d_world = torch.nn.functional.normalize(d_world, dim=-1)
        origins = self.centers[:, None, None, :].expand_as(d_world)
        return origins, d_world

    def plucker(self) -> Tensor:
        """Plücker ray coordinates ``[C, H, W, 6]`` = (o x d, d) per pixel, world frame, d unit."""
        o, d = self.rays()
        return torch.cat([torch.linalg.cross(o, d, dim=-1), d], dim=-1)
