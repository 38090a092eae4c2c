"""Mesh files as data-engine objects: Open3D signed distances and sphere-traced renders."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recon.core.errors import ReconError
from recon.data.procedural.mesh_object import load_normalised, mesh_object, object_mesh
from recon.data.procedural.objects import OBJECT_RADIUS, ProceduralObject
from recon.data.procedural.primitives import Box, Sphere
from recon.data.procedural.trace import Lighting, render_sdf
from renderer import Cameras

trimesh = pytest.importorskip("trimesh")
pytest.importorskip("open3d")


@pytest.fixture(scope="module")
def ico_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("mesh") / "ico.ply"
    trimesh.creation.icosphere(subdivisions=4, radius=2.0).export(path)
    return path


@pytest.fixture(scope="module")
def box_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("mesh") / "box.obj"
    trimesh.creation.box(extents=(2.0, 1.0, 0.5)).export(path)
    return path


@pytest.fixture(scope="module")
def torus_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("mesh") / "torus.obj"
    trimesh.creation.torus(major_radius=1.0, minor_radius=0.3, major_sections=48, minor_sections=24).export(path)
    return path


def test_signed_distance_of_box_is_exact(box_path):
    obj = mesh_object(box_path, radius=0.9, up_axis="z")
    v = object_mesh(obj, colors=False).vertices
    ref = Box(half=tuple((0.5 * (v.max(0).values - v.min(0).values)).tolist()))
    pts = torch.rand(4000, 3, generator=torch.Generator().manual_seed(0)) * 2.0 - 1.0
    got, want = obj.sdf(pts), ref.distance(pts)
    assert (want < -1e-3).sum() > 200  # enough points inside
    assert (got - want).abs().max() < 1e-5  # sign and magnitude


def test_signed_distance_matches_trimesh(torus_path):
    obj = mesh_object(torus_path, radius=0.9, up_axis="z")
    gt = object_mesh(obj, colors=False)
    tm = trimesh.Trimesh(gt.vertices.numpy(), gt.faces.numpy(), process=False)
    pts = np.random.default_rng(0).uniform(-1.0, 1.0, (1500, 3)) * [1.0, 1.0, 0.4]
    _, dist, _ = trimesh.proximity.closest_point_naive(tm, pts)  # brute force over all triangles
    got = obj.sdf(torch.tensor(pts, dtype=torch.float32)).numpy()
    assert np.abs(np.abs(got) - dist).max() < 1e-5
    # sign: the analytic torus (ring 0.9 / 1.3 scaled, tube 0.3 / 1.3 scaled) away from the facets
    s = 0.9 / 1.3
    analytic = np.hypot(np.hypot(pts[:, 0], pts[:, 1]) - s, pts[:, 2]) - 0.3 * s
    far = np.abs(analytic) > 0.02
    assert (analytic[far] < 0).sum() > 100
    assert (np.sign(got[far]) == np.sign(analytic[far])).all()


def test_normalisation_and_up_axis(box_path):
    v, _ = load_normalised(box_path, radius=0.9, up_axis="x")  # the box's long side becomes z
    assert np.linalg.norm(v, axis=1).max() == pytest.approx(0.9, abs=1e-9)
    ext = v.max(0) - v.min(0)
    assert np.argmax(ext) == 2 and np.allclose(0.5 * (v.max(0) + v.min(0)), 0, atol=1e-9)
    assert ext[2] / ext[1] == pytest.approx(2.0, rel=1e-6)


def test_render_matches_analytic_sphere(ico_path):
    obj = mesh_object(ico_path, radius=OBJECT_RADIUS)
    ref = ProceduralObject(Sphere(radius=OBJECT_RADIUS), obj.materials, (-0.9,) * 3, (0.9,) * 3)
    cams = Cameras.orbit(3, radius=2.6, elevation_deg=25.0, width=64, height=64)
    a = render_sdf(obj, cams, Lighting.ambient_only())
    b = render_sdf(ref, cams, Lighting.ambient_only())
    both = (a.masks > 0.5) & (b.masks > 0.5)
    # mask pixels differ only on the silhouette (flat facets sit at most ~0.001 inside the sphere)
    assert (a.masks != b.masks).float().mean() < 0.005
    assert (a.depth_z - b.depth_z)[both].abs().mean() < 0.003
    assert (a.images - b.images).abs().mean() < 0.01  # same solid texture at the same points


def test_object_mesh_is_ground_truth(ico_path):
    obj = mesh_object(ico_path)
    gt = object_mesh(obj)
    assert gt.vertices.shape[1] == 3 and gt.vertex_colors.shape == gt.vertices.shape
    assert gt.vertices.norm(dim=1).max().item() == pytest.approx(OBJECT_RADIUS, abs=1e-5)
    assert obj.sdf(gt.vertices).abs().max() < 1e-5


def test_missing_file_is_a_recon_error(tmp_path):
    with pytest.raises(ReconError, match="not found"):
        mesh_object(tmp_path / "nope.obj")
