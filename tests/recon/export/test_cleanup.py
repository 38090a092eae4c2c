"""Clean-up, topology report and the face budget."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from recon.core.types import Mesh
from recon.export import CleanupOptions, clean_mesh, decimate, lod_chain, mesh_report
from tests.recon.export.conftest import icosphere


def _mesh(tm: trimesh.Trimesh) -> Mesh:
    return Mesh(torch.tensor(np.asarray(tm.vertices), dtype=torch.float32), torch.tensor(np.asarray(tm.faces)))


def test_report_counts_genus_of_sphere_and_torus():
    sphere = mesh_report(icosphere(subdivisions=2))
    assert sphere["watertight"] and sphere["genus"] == 0 and sphere["euler_characteristic"] == 2
    torus = mesh_report(_mesh(trimesh.creation.torus(1.0, 0.3)))
    assert torus["watertight"] and torus["genus"] == 1 and torus["components"] == 1


def test_floaters_go_and_holes_close():
    big = icosphere(0.5, subdivisions=3)
    tiny = icosphere(0.02, subdivisions=0, center=(2.0, 0.0, 0.0))
    hole = (big.faces == big.faces[100, 0]).any(-1)  # the fan around one vertex: a hexagonal hole
    hole[200] = True  # and a one-triangle hole elsewhere
    faces = torch.cat([big.faces[~hole], tiny.faces + len(big.vertices)])  # + a floater
    mesh = Mesh(torch.cat([big.vertices, tiny.vertices]), faces, torch.cat([big.vertex_colors, tiny.vertex_colors]))
    before = mesh_report(mesh)
    assert before["components"] == 2 and not before["watertight"]
    out = clean_mesh(mesh, CleanupOptions(hole_size_fraction=0.3))  # hexagon perimeter ~0.27 diagonals
    rep = mesh_report(out)
    assert rep["components"] == 1 and rep["watertight"] and rep["genus"] == 0, rep
    assert float(out.vertices[:, 0].max()) < 0.6  # the floater is gone
    assert out.vertex_colors is not None and len(out.vertex_colors) == len(out.vertices)


def test_large_holes_stay_open_and_winding_is_fixed():
    sphere = icosphere(0.5, subdivisions=3)
    keep = sphere.vertices[sphere.faces].mean(1)[:, 2] > -0.3  # cut off a big cap
    flipped = sphere.faces[keep].clone()
    flipped[::3] = flipped[::3].flip(-1)  # every third face wound the wrong way
    out = clean_mesh(Mesh(sphere.vertices, flipped), CleanupOptions(hole_size_fraction=0.05))
    rep = mesh_report(out)
    assert not rep["watertight"] and rep["winding_consistent"], rep
    tm = trimesh.Trimesh(out.vertices.numpy(), out.faces.numpy(), process=False)
    centre_to_face = tm.triangles_center - np.array([0.0, 0.0, 0.0])
    assert (np.einsum("ij,ij->i", tm.face_normals, centre_to_face) > 0).mean() > 0.99  # outward


def test_taubin_smoothing_keeps_size():
    rng = np.random.default_rng(0)
    sphere = icosphere(0.5, subdivisions=3)
    noisy = Mesh(sphere.vertices + torch.tensor(rng.normal(0, 0.01, sphere.vertices.shape), dtype=torch.float32),
                 sphere.faces)
    out = clean_mesh(noisy, CleanupOptions(taubin_iterations=10))
    r = out.vertices.norm(dim=-1)
    assert float(r.std()) < float(noisy.vertices.norm(dim=-1).std()) and abs(float(r.mean()) - 0.5) < 0.02


@pytest.mark.parametrize("budget", [300, 1000])
def test_decimation_meets_budget_and_lods_shrink(budget):
    mesh = icosphere(0.5, subdivisions=4)  # 5120 faces
    out = decimate(mesh, budget)
    assert abs(len(out.faces) - budget) <= 0.05 * budget
    assert mesh_report(out)["watertight"]
    levels = lod_chain(mesh, budget, (1.0, 0.25))
    assert [len(m.faces) for m in levels][1] <= 0.27 * budget
    assert decimate(mesh, 10_000) is mesh  # within budget: untouched
