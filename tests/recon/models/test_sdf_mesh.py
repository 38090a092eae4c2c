"""Marching cubes through ``extract_mesh``, the triplane head fitted to a sphere, and meshes in the world frame."""

from __future__ import annotations

import torch

from recon.core.resize import model_input_size
from recon.core.types import Views
from recon.inference import Reconstructor
from recon.models import preset
from recon.models.frame import CanonicalFrame
from recon.models.heads import TriplaneSdfHead
from recon.models.sdf_mesh import extract_mesh
from renderer import Cameras


def _color(p: torch.Tensor) -> torch.Tensor:
    return ((p + 1) / 2).clamp(0, 1)


def _outward_fraction(verts: torch.Tensor, faces: torch.Tensor, center: torch.Tensor) -> float:
    n = torch.linalg.cross(verts[faces[:, 1]] - verts[faces[:, 0]], verts[faces[:, 2]] - verts[faces[:, 0]])
    return float(((n * (verts[faces].mean(1) - center)).sum(-1) > 0).float().mean())


def test_marching_cubes_of_an_analytic_sphere():
    """An off-centre sphere (so a swapped axis or a shifted grid shows): vertices on it to a small
    fraction of a cell (the brief asks for half a cell), a closed surface (Euler characteristic 2),
    faces wound outwards, colours evaluated at the vertices."""
    c, r, res, extent = torch.tensor([0.3, -0.2, 0.1]), 0.6, 48, 1.0
    calls = []

    def field(p):
        calls.append(len(p))
        return (p - c).norm(dim=-1) - r, _color(p)

    verts, faces, colors = extract_mesh(field, resolution=res, extent=extent, chunk=5000)
    h = 2 * extent / (res - 1)
    assert max(calls) <= 5000  # chunked
    assert verts.dtype == torch.float32 and faces.dtype == torch.int64 and faces.shape[1] == 3
    assert ((verts - c).norm(dim=-1) - r).abs().max() < 0.05 * h
    assert len(verts) - len(faces) // 2 == 2  # V - E + F with E = 3F/2: a closed sphere
    assert _outward_fraction(verts, faces, c) == 1.0
    assert torch.equal(colors, _color(verts))
    lo, hi = verts.min(0).values, verts.max(0).values
    assert torch.allclose(lo, c - r, atol=0.05 * h) and torch.allclose(hi, c + r, atol=0.05 * h)


def test_marching_cubes_of_an_empty_field():
    verts, faces, colors = extract_mesh(lambda p: (p.norm(dim=-1) + 1.0, _color(p)), resolution=8)
    assert verts.shape == (0, 3) and faces.shape == (0, 3) and colors.shape == (0, 3)


def test_triplane_head_fits_a_sphere():
    """A few hundred Adam steps on the tiny triplane head's planes and MLP against the SDF of a
    sphere of radius 0.5 (its prior is radius 0.8): the mesh's mean vertex radius is 0.5 +- 0.05."""
    torch.manual_seed(0)
    cfg = preset("tiny")
    tc = cfg.triplane_head
    head = TriplaneSdfHead(tc, cfg.backbone.dim, cfg.backbone.heads)
    planes = torch.nn.Parameter(0.1 * torch.randn(1, 3, tc.plane_channels, tc.plane_res, tc.plane_res))
    opt = torch.optim.Adam([planes, *head.mlp.parameters()], lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    for _ in range(200):
        uniform = (torch.rand(256, 3, generator=gen) * 2 - 1) * tc.extent
        shell = torch.nn.functional.normalize(torch.randn(256, 3, generator=gen), dim=-1)
        shell = shell * (0.5 + 0.1 * torch.randn(256, 1, generator=gen))
        p = torch.cat([uniform, shell])[None]
        sdf, _ = head.decode(planes, p)
        target = p.norm(dim=-1) - 0.5
        loss = (sdf.clamp(-0.3, 0.3) - target.clamp(-0.3, 0.3)).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    def field(q):
        s, rgb = head.decode(planes, q[None])
        return s[0], rgb[0]

    verts, faces, colors = extract_mesh(field, resolution=48, extent=tc.extent)
    radius = verts.norm(dim=-1)
    assert len(faces) > 100
    assert abs(float(radius.mean()) - 0.5) < 0.05
    assert ((colors >= 0) & (colors <= 1)).all()


def test_reconstructor_mesh_is_in_the_world_frame(tiny_model):
    """The untrained triplane decodes close to its prior, a sphere of radius 0.8 around the
    canonical origin; in a world that is shifted and scaled, the mesh must be shifted and scaled too."""
    center = torch.tensor([2.0, -1.0, 0.5])
    cams = Cameras.orbit(3, radius=5.0, center=tuple(center.tolist()), width=48, height=40)
    images = torch.rand(3, 40, 48, 3, generator=torch.Generator().manual_seed(0))
    rec = Reconstructor(tiny_model, dtype=torch.float32)
    mesh = rec.mesh(Views(images, cams), resolution=40)

    frame = CanonicalFrame.from_cameras(cams.resize(*model_input_size(48, 40, 32, 8)))
    assert frame.scale > 1.5  # so a mesh left in canonical units would fail below
    dist = (mesh.vertices - frame.center).norm(dim=-1) / frame.scale
    assert len(mesh.faces) > 100 and mesh.faces.dtype == torch.int64
    assert (dist - 0.8).abs().max() < 0.15
    assert mesh.vertex_colors.shape == mesh.vertices.shape
    assert _outward_fraction(mesh.vertices, mesh.faces, frame.center) > 0.95
