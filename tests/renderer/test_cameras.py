"""Cameras: conventions, rigs, image edits that keep K exact, rays and validation."""

from __future__ import annotations

import math

import pytest
import torch

from renderer import CameraError, Cameras


def test_look_at_axes_follow_opencv():
    eye = torch.tensor([[0.0, -3.0, 1.0]])
    cam = Cameras.look_at(eye, torch.zeros(3), up=(0, 0, 1), width=64, height=48)
    R = cam.c2w[0, :3, :3]
    torch.testing.assert_close(R.T @ R, torch.eye(3), atol=1e-6, rtol=0)
    assert torch.det(R) > 0.999
    # z looks at the target, y (image down) points against world up.
    torch.testing.assert_close(cam.forward[0], torch.nn.functional.normalize(-eye[0], dim=0))
    assert float(cam.c2w[0, :3, 1] @ torch.tensor([0.0, 0.0, 1.0])) < 0
    # The target projects to the principal point; a point above it projects above (smaller v).
    uv, z = cam.project(torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.5]]))
    torch.testing.assert_close(uv[0, 0], torch.tensor([32.0, 24.0]), atol=1e-4, rtol=0)
    assert uv[0, 1, 1] < 24 and z[0, 0] > 0


def test_look_at_along_up_is_not_degenerate():
    cam = Cameras.look_at(torch.tensor([[0.0, 0.0, 3.0]]), torch.zeros(3), up=(0, 0, 1))
    assert torch.isfinite(cam.c2w).all()
    cam.validate()


def test_orbit_rig():
    cams = Cameras.orbit(8, radius=2.0, elevation_deg=30, center=(0.5, 0.0, 0.0), width=32, height=32)
    assert len(cams) == 8
    d = cams.centers - torch.tensor([0.5, 0.0, 0.0])
    torch.testing.assert_close(d.norm(dim=-1), torch.full((8,), 2.0), atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.rad2deg(torch.asin(d[:, 2] / 2.0)), torch.full((8,), 30.0), atol=1e-3, rtol=0)
    uv, _ = cams.project(torch.tensor([[0.5, 0.0, 0.0]]))
    torch.testing.assert_close(uv[:, 0], torch.full((8, 2), 16.0), atol=1e-3, rtol=0)


def test_w2c_is_inverse():
    cams = Cameras.orbit(5, radius=3.0, elevation_deg=-10)
    torch.testing.assert_close(cams.w2c @ cams.c2w, torch.eye(4).expand(5, 4, 4), atol=1e-5, rtol=0)
    back = Cameras.from_w2c(cams.w2c, cams.K, cams.width, cams.height)
    torch.testing.assert_close(back.c2w, cams.c2w, atol=1e-5, rtol=0)


@pytest.mark.parametrize("new_size", [(128, 96), (17, 13), (400, 300)])
def test_resize_and_crop_keep_projection_exact(new_size):
    cams = Cameras.orbit(3, radius=2.5, width=64, height=48).to(dtype=torch.float64)
    pts = torch.randn(20, 3, dtype=torch.float64) * 0.3
    uv, _ = cams.project(pts)
    w, h = new_size
    r = cams.resize(w, h)
    uv_r, _ = r.project(pts)
    torch.testing.assert_close(uv_r[..., 0], uv[..., 0] * w / 64)
    torch.testing.assert_close(uv_r[..., 1], uv[..., 1] * h / 48)
    c = cams.crop(10, 5, 30, 20)
    uv_c, _ = c.project(pts)
    torch.testing.assert_close(uv_c, uv - torch.tensor([10.0, 5.0], dtype=torch.float64))
    assert (c.width, c.height) == (30, 20)


def test_rays_and_plucker():
    cams = Cameras.orbit(2, radius=2.0, width=8, height=6).to(dtype=torch.float64)
    o, d = cams.rays()
    assert o.shape == (2, 6, 8, 3) and d.shape == (2, 6, 8, 3)
    torch.testing.assert_close(d.norm(dim=-1), torch.ones(2, 6, 8, dtype=torch.float64))
    # A point on each pixel's ray projects back to that pixel centre.
    pts = (o + 1.7 * d)[0].reshape(-1, 3)
    uv, _ = cams[0].project(pts)
    v, u = torch.meshgrid(torch.arange(6) + 0.5, torch.arange(8) + 0.5, indexing="ij")
    torch.testing.assert_close(uv[0], torch.stack([u, v], -1).reshape(-1, 2).double())
    # Plücker moment o x d is the same for every point on the ray.
    pl = cams.plucker()
    assert pl.shape == (2, 6, 8, 6)
    p = o + 0.8 * d
    torch.testing.assert_close(torch.linalg.cross(p, d, dim=-1), pl[..., :3])
    torch.testing.assert_close(pl[..., 3:], d)


def test_indexing_cat_and_to():
    cams = Cameras.orbit(4)
    sub = cams[[0, 2]]
    assert len(sub) == 2 and torch.equal(sub.c2w[1], cams.c2w[2])
    assert len(Cameras.cat([cams, sub])) == 6
    assert cams.to(dtype=torch.float64).c2w.dtype == torch.float64
    with pytest.raises(CameraError, match="different image sizes"):
        Cameras.cat([cams, cams.resize(10, 10)])


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda c: c.c2w.__setitem__((1, 0, 3), math.nan), "NaN"),
        (lambda c: c.c2w.__setitem__((0, slice(0, 3), slice(0, 3)), torch.zeros(3, 3)), "not a proper rotation"),
        (lambda c: c.c2w.__setitem__((0, slice(0, 3), slice(0, 3)), 2 * torch.eye(3)), "not a proper rotation"),
        (lambda c: c.c2w.__setitem__((0, slice(0, 3), 0), -c.c2w[0, :3, 0]), "not a proper rotation"),
        (lambda c: c.K.__setitem__((2, 0, 0), -5.0), "focal"),
        (lambda c: c.c2w.__setitem__((0, 3, 0), 1.0), "last row"),
    ],
)
def test_validate_rejects_bad_cameras(corrupt, message):
    cams = Cameras.orbit(3)
    corrupt(cams)
    with pytest.raises(CameraError, match=message) as e:
        cams.validate(source="rig.json")
    assert "rig.json" in str(e.value) and "\n" not in str(e.value)


def test_constructor_rejects_mismatched_counts():
    with pytest.raises(CameraError, match="3 poses but 2 intrinsics"):
        Cameras(torch.eye(4).repeat(3, 1, 1), torch.eye(3).repeat(2, 1, 1), 10, 10)
    with pytest.raises(CameraError, match="positive"):
        Cameras(torch.eye(4), torch.eye(3), 0, 10)
