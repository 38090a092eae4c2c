"""Gaussians: construction, batch edits, SH degree handling, similarity transforms, validation."""

from __future__ import annotations

import pytest
import torch
from kornia.geometry.conversions import quaternion_to_rotation_matrix

from bench.scenes import random_scene
from renderer import Gaussians, ReconError
from renderer.gaussians import quat_wxyz_multiply
from renderer.sh import eval_sh, rotate_sh


def test_from_rgb_roundtrip_and_covariance():
    rgb = torch.rand(10, 3)
    g = Gaussians.from_rgb(torch.randn(10, 3), rgb, torch.rand(10, 3) + 0.1, torch.rand(10), sh_degree=2)
    assert g.sh.shape == (10, 9, 3) and g.sh_degree == 2
    torch.testing.assert_close(g.rgb_dc, rgb)
    # Identity rotation: covariance is diag(scale^2).
    torch.testing.assert_close(g.covariances(), torch.diag_embed(g.scales**2))


def test_index_cat_and_degree_padding():
    a, b = random_scene(20, seed=1, sh_degree=0), random_scene(10, seed=2, sh_degree=3)
    c = Gaussians.cat([a, b])
    assert len(c) == 30 and c.sh_degree == 3
    torch.testing.assert_close(c.sh[:20, 1:], torch.zeros(20, 15, 3))
    kept = c[c.opacities > 0.5]
    assert len(kept) == int((c.opacities > 0.5).sum())
    assert len(c[torch.tensor([0, 5, 7])]) == 3
    assert c.with_sh_degree(1).sh.shape == (30, 4, 3)
    assert c.to(dtype=torch.float64).means.dtype == torch.float64


def test_quaternion_product_matches_rotation_composition():
    q1 = torch.nn.functional.normalize(torch.randn(5, 4, dtype=torch.float64), dim=-1)
    q2 = torch.nn.functional.normalize(torch.randn(5, 4, dtype=torch.float64), dim=-1)
    R = quaternion_to_rotation_matrix
    torch.testing.assert_close(R(quat_wxyz_multiply(q1, q2)), R(q1) @ R(q2))


@pytest.mark.parametrize("degree", [1, 2, 3])
def test_rotate_sh_rotates_the_colour_field(degree):
    q = torch.nn.functional.normalize(torch.randn(1, 4, dtype=torch.float64), dim=-1)
    R = quaternion_to_rotation_matrix(q)[0]
    sh = torch.randn(7, (degree + 1) ** 2, 3, dtype=torch.float64)
    d = torch.randn(7, 3, dtype=torch.float64)
    # The rotated field seen along R d equals the original seen along d.
    torch.testing.assert_close(eval_sh(degree, rotate_sh(sh, R), d @ R.T), eval_sh(degree, sh, d))


def test_transform_moves_means_covariances_and_scale():
    g = random_scene(50, seed=3, sh_degree=1, dtype=torch.float64)
    q = torch.nn.functional.normalize(torch.tensor([[0.3, -0.5, 0.7, 0.1]], dtype=torch.float64), dim=-1)
    R = quaternion_to_rotation_matrix(q)[0]
    t = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    h = g.transform(2.0, R, t)
    torch.testing.assert_close(h.means, 2.0 * g.means @ R.T + t)
    torch.testing.assert_close(h.covariances(), 4.0 * R @ g.covariances() @ R.T)
    with pytest.raises(ReconError, match="scale"):
        g.transform(-1.0)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("means", float("nan"), "means has NaN"),
        ("scales", -1.0, "scales must be positive"),
        ("opacities", 1.5, "opacities"),
        ("quats_wxyz", 0.0, "quaternion is zero"),
    ],
)
def test_validate(field, value, message):
    g = random_scene(5)
    getattr(g, field)[0] = value
    with pytest.raises(ReconError, match=message) as e:
        g.validate("scene.ply")
    assert str(e.value).startswith("scene.ply")


def test_shape_errors():
    with pytest.raises(ReconError, match="quats_wxyz"):
        Gaussians(torch.zeros(3, 3), torch.zeros(3, 3), torch.ones(3, 3), torch.ones(3), torch.zeros(3, 1, 3))
    with pytest.raises(ReconError, match="sh"):
        Gaussians(torch.zeros(3, 3), torch.zeros(3, 4), torch.ones(3, 3), torch.ones(3), torch.zeros(3, 5, 3))
