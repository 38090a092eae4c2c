"""Procedural data engine: SDF correctness, sphere-traced depth, view consistency, determinism,
scenes, ground-truth meshes and samples. Small resolutions: the whole file runs in well under a
minute on the 2-core CPU."""

from __future__ import annotations

import math

import pytest
import torch

from recon.data.procedural import sdf as S
from recon.data.procedural.item import make_item, object_for_seed
from recon.data.procedural.mesh import ground_truth_mesh, sdf_samples, surface_samples
from recon.data.procedural.objects import ProceduralObject, random_object, random_scene
from recon.data.procedural.rigs import forward_rig, object_rig
from recon.data.procedural.texture import Solid, random_material
from recon.data.procedural.trace import Lighting, render_sdf
from renderer import Cameras


@pytest.fixture(autouse=True)
def _one_thread():
    """The engine issues many small ops; on a shared 2-core machine a second intra-op thread mostly
    waits (10x slower under load), so these tests run single-threaded, as DataLoader workers do."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _points(n: int, lo: float = -1.5, hi: float = 1.5, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(n, 3, generator=g)


def _rotation(seed: int) -> tuple:
    from recon.data.procedural.random_tools import random_rotation

    return random_rotation(torch.Generator().manual_seed(seed))


# ---- SDF values against analytic formulas ------------------------------------------------------


def _analytic(kind: str, p: torch.Tensor) -> torch.Tensor:
    """Independent float64 distances: nearest points by clamping / closed forms."""
    p = p.double()
    x, y, z = p.unbind(-1)
    if kind == "sphere":
        return p.norm(dim=-1) - 0.6
    if kind == "box":
        b = torch.tensor([0.5, 0.3, 0.7], dtype=torch.float64)
        nearest = torch.maximum(torch.minimum(p, b), -b)
        outside = (p - nearest).norm(dim=-1)
        inside = -(b - p.abs()).min(dim=-1).values
        return torch.where(outside > 0, outside, inside)
    if kind == "torus":
        return torch.sqrt((torch.sqrt(x**2 + y**2) - 0.6) ** 2 + z**2) - 0.2
    if kind == "capsule":
        seg = torch.stack([torch.zeros_like(z), torch.zeros_like(z), z.clamp(-0.5, 0.5)], -1)
        return (p - seg).norm(dim=-1) - 0.25
    if kind == "cylinder":
        r = torch.sqrt(x**2 + y**2)
        inside = (r <= 0.4) & (z.abs() <= 0.5)
        nr, nz = r.clamp(max=0.4), z.clamp(-0.5, 0.5)
        outside = torch.sqrt((r - nr) ** 2 + (z - nz) ** 2)
        return torch.where(inside, -torch.minimum(0.4 - r, 0.5 - z.abs()), outside)
    raise ValueError(kind)


PRIMS = {
    "sphere": S.Sphere(radius=0.6),
    "box": S.Box(half=(0.5, 0.3, 0.7)),
    "torus": S.Torus(major=0.6, minor=0.2),
    "capsule": S.Capsule(half_length=0.5, radius=0.25),
    "cylinder": S.Cylinder(half_height=0.5, radius=0.4),
}


@pytest.mark.parametrize("kind", list(PRIMS))
def test_primitive_matches_analytic(kind):
    p = _points(4000, seed=1)
    torch.testing.assert_close(PRIMS[kind].distance(p).double(), _analytic(kind, p), atol=2e-6, rtol=0)


def _surface_samples(kind: str, n: int = 60000) -> torch.Tensor:
    """Dense samples of primitive surfaces from their parametric descriptions."""
    g = torch.Generator().manual_seed(2)
    u = torch.rand(n, 3, generator=g)
    if kind == "cone":  # h = 0.5, r_bottom = 0.5 at z = -0.5, r_top = 0.15
        a = 2 * math.pi * u[:, 0]
        side = u[:, 2] < 0.7
        z = torch.where(side, -0.5 + u[:, 1], torch.where(u[:, 1] < 0.5, torch.full_like(a, -0.5), torch.full_like(a, 0.5)))
        rmax = torch.where(z < 0, 0.5, 0.15)
        r = torch.where(side, 0.5 + (0.15 - 0.5) * (z + 0.5), rmax * torch.sqrt(u[:, 1] * 2 % 1))
        return torch.stack([r * torch.cos(a), r * torch.sin(a), z], -1)
    if kind == "octahedron":  # |x| + |y| + |z| = 0.7
        w = -torch.log(u.clamp_min(1e-9))
        w = w / w.sum(-1, keepdim=True) * 0.7
        signs = torch.where(torch.rand(n, 3, generator=g) < 0.5, -1.0, 1.0)
        return w * signs
    if kind == "hexprism":  # apothem 0.4, half height 0.5
        a = 2 * math.pi * u[:, 0]
        R = 0.4 / math.cos(math.pi / 6)
        k = torch.floor(a / (math.pi / 3))
        t = a / (math.pi / 3) - k
        c0 = torch.stack([R * torch.cos(k * math.pi / 3), R * torch.sin(k * math.pi / 3)], -1)  # vertices on the x axis
        c1 = torch.stack([R * torch.cos((k + 1) * math.pi / 3), R * torch.sin((k + 1) * math.pi / 3)], -1)
        edge = c0 + (c1 - c0) * t[:, None]
        side = u[:, 2] < 0.6
        xy = torch.where(side[:, None], edge, edge * torch.sqrt((u[:, 2:3] - 0.6) / 0.4))
        z = torch.where(side, -0.5 + u[:, 1], torch.where(u[:, 1] < 0.5, -0.5, 0.5))
        return torch.cat([xy, z[:, None]], -1)
    raise ValueError(kind)


@pytest.mark.parametrize("kind,node", [
    ("cone", S.Cone(half_height=0.5, r_bottom=0.5, r_top=0.15)),
    ("octahedron", S.Octahedron(size=0.7)),
    ("hexprism", S.HexPrism(apothem=0.4, half_height=0.5)),
])
def test_primitive_matches_brute_force_distance(kind, node):
    p = _points(400, -1.0, 1.0, seed=3)
    brute = torch.cdist(p.double(), _surface_samples(kind).double()).min(dim=1).values
    d = node.distance(p).double()
    assert (d.abs() - brute).abs().max() < 0.02  # sample spacing of the brute force
    assert (d.abs() <= brute + 1e-5).all()  # never more than the true distance


def _grad_norm(fn, p: torch.Tensor, h: float = 1e-3) -> torch.Tensor:
    e = torch.eye(3, dtype=p.dtype) * h
    g = torch.stack([(fn(p + e[i]) - fn(p - e[i])) / (2 * h) for i in range(3)], -1)
    return g.norm(dim=-1)


@pytest.mark.parametrize("node", list(PRIMS.values()) + [
    S.Cone(half_height=0.5, r_bottom=0.5, r_top=0.15), S.Octahedron(size=0.7), S.HexPrism(apothem=0.4, half_height=0.5),
    S.RoundBox(half=(0.5, 0.4, 0.3), radius=0.1),
], ids=lambda n: type(n).__name__)
def test_exact_sdf_gradient_has_unit_norm(node):
    p = _points(3000, seed=4).double().float()
    d = node.distance(p)
    p = p[d > 0.05]  # outside, away from the medial axis
    g = _grad_norm(node.distance, p)
    assert (g - 1).abs().quantile(0.99) < 2e-2


def _lipschitz_ratio(node, n: int = 4000, seed: int = 5) -> float:
    a = _points(n, -1.2, 1.2, seed)
    b = a + 0.05 * torch.randn(n, 3, generator=torch.Generator().manual_seed(seed + 1))
    return float(((node.distance(a) - node.distance(b)).abs() / (a - b).norm(dim=-1)).max())


@pytest.mark.parametrize("name,node", [
    ("ellipsoid", S.Ellipsoid(radii=(0.8, 0.2, 0.4))),
    ("twist", S.Twist(S.Box(half=(0.6, 0.15, 0.7)), 3.0)),
    ("bend", S.Bend(S.Capsule(half_length=0.8, radius=0.1), 1.5)),
    ("smooth_union", S.Union([S.Sphere(radius=0.5), S.Similarity(S.Box(half=(0.3, 0.3, 0.3)), translation=(0.5, 0, 0))], k=0.3)),
    ("smooth_subtract", S.Subtract(S.Box(half=(0.6, 0.6, 0.6)), S.Sphere(radius=0.7), k=0.2)),
    ("intersect", S.Intersect(S.Sphere(radius=0.7), S.Box(half=(0.5, 0.5, 0.5)), k=0.1)),
    ("onion_mirror", S.Mirror(S.Onion(S.Similarity(S.Torus(major=0.4, minor=0.1), translation=(0.5, 0, 0)), 0.03))),
])
def test_bounds_are_one_lipschitz(name, node):
    assert _lipschitz_ratio(node) <= 1.0 + 1e-3


def test_random_objects_are_one_lipschitz_and_fit_the_unit_sphere():
    for seed in range(4):
        obj = random_object(torch.Generator().manual_seed(seed), complexity=0.3 * seed)
        assert _lipschitz_ratio(obj.root, 2000, seed) <= 1.0 + 1e-3
        p = _points(20000, -1.0, 1.0, seed)
        inside = p[obj.sdf(p) < 0]
        assert len(inside) > 0 and inside.norm(dim=-1).max() < 0.92
        lo, hi = torch.tensor(obj.bbox_min), torch.tensor(obj.bbox_max)
        assert ((inside >= lo) & (inside <= hi)).all()


def test_similarity_transform_scales_distance():
    R = _rotation(7)
    node = S.Similarity(S.Box(half=(0.2, 0.3, 0.4)), R, (0.1, -0.2, 0.3), 1.7)
    p = _points(2000, seed=8)
    Rt = torch.tensor(R)
    local = (p - torch.tensor([0.1, -0.2, 0.3])) @ Rt / 1.7
    torch.testing.assert_close(node.distance(p), 1.7 * S.Box(half=(0.2, 0.3, 0.4)).distance(local), atol=1e-5, rtol=0)
    sph = S.Similarity(S.Sphere(radius=0.5), translation=(0.3, 0.0, 0.0), scale=2.0)
    torch.testing.assert_close(sph.distance(p), (p - torch.tensor([0.3, 0.0, 0.0])).norm(dim=-1) - 1.0, atol=1e-5, rtol=0)
    merged = S.Similarity.compose(S.Similarity(S.Box(half=(0.2, 0.3, 0.4)), R, (0.1, 0, 0), 0.5), _rotation(9), (0, 0.2, 0), 3.0)
    nested = S.Similarity(S.Similarity(S.Box(half=(0.2, 0.3, 0.4)), R, (0.1, 0, 0), 0.5), _rotation(9), (0, 0.2, 0), 3.0)
    torch.testing.assert_close(merged.distance(p), nested.distance(p), atol=1e-5, rtol=0)


def test_union_skipping_is_exact():
    parts = [S.Similarity(S.Sphere(radius=0.1 + 0.02 * i), translation=(math.cos(i), math.sin(i), 0.1 * i - 0.5)) for i in range(12)]
    flat, tree = S.Union(parts), S.union_tree(parts)
    p = _points(S.CULL_MIN_POINTS * 4, seed=10)
    brute = torch.stack([c.distance(p) for c in parts]).amin(0)
    assert torch.equal(flat.distance(p), brute) and torch.equal(tree.distance(p), brute)
    sub = S.Subtract(S.Box(half=(1, 1, 1)), S.union_tree(parts))
    torch.testing.assert_close(sub.distance(p), torch.maximum(S.Box(half=(1, 1, 1)).distance(p), -brute))


# ---- rendering ------------------------------------------------------------------------------


def _obj(root, lo, hi) -> ProceduralObject:
    return ProceduralObject(root, [Solid(color=(0.8, 0.4, 0.2))], lo, hi)


def _rays(cams: Cameras) -> tuple[torch.Tensor, torch.Tensor]:
    o, d = cams.rays()
    return o.reshape(-1, 3).double(), d.reshape(-1, 3).double()


def test_sphere_traced_depth_matches_ray_sphere():
    c, r = torch.tensor([0.1, -0.05, 0.2]), 0.5
    obj = _obj(S.Similarity(S.Sphere(radius=r), translation=tuple(c.tolist())), tuple((c - r).tolist()), tuple((c + r).tolist()))
    cams = Cameras.orbit(3, radius=2.2, elevation_deg=25, width=64, height=64, fov_deg=45)
    views = render_sdf(obj, cams, Lighting.ambient_only())
    o, d = _rays(cams)
    oc = o - c.double()
    b = (oc * d).sum(-1)
    disc = b * b - ((oc * oc).sum(-1) - r * r)
    t = -b - disc.clamp_min(0).sqrt()
    z = t * (d * cams.forward.double().repeat_interleave(64 * 64, 0)).sum(-1)
    hit = (disc > 0).reshape(3, 64, 64)
    mask = views.masks[..., 0] > 0.5
    inner = disc.reshape(3, 64, 64) > 0.01  # away from the silhouette
    assert mask[inner].all() and not mask[disc.reshape(3, 64, 64) < -0.01].any()
    err = (views.depth_z[..., 0].double() - z.reshape(3, 64, 64)).abs()[inner & hit]
    assert err.max() < 1e-3
    # normals point outward, colour equals albedo under ambient-only light
    p = (o + t[:, None] * d).reshape(3, 64, 64, 3)[inner]
    n_true = torch.nn.functional.normalize(p - c.double(), dim=-1)
    assert ((views.normals[inner].double() * n_true).sum(-1) > 0.999).all()
    torch.testing.assert_close(views.images[inner], torch.tensor([0.8, 0.4, 0.2]).expand_as(views.images[inner]))


def test_sphere_traced_depth_matches_ray_box():
    R = _rotation(11)
    half = torch.tensor([0.5, 0.3, 0.4], dtype=torch.float64)
    obj = _obj(S.Similarity(S.Box(half=tuple(half.tolist())), R), (-0.8, -0.8, -0.8), (0.8, 0.8, 0.8))
    cams = Cameras.orbit(3, radius=2.5, elevation_deg=35, width=64, height=64, fov_deg=40)
    views = render_sdf(obj, cams, Lighting.ambient_only())
    o, d = _rays(cams)
    Rt = torch.tensor(R, dtype=torch.float64)
    ol, dl = o @ Rt, d @ Rt  # box frame
    t_a, t_b = (-half - ol) / dl, (half - ol) / dl
    t0 = torch.minimum(t_a, t_b).max(-1).values
    t1 = torch.maximum(t_a, t_b).min(-1).values
    axis = torch.minimum(t_a, t_b).argmax(-1, keepdim=True)  # the entry face's axis
    cos = dl.abs().gather(1, axis)[:, 0]  # incidence on the entry face
    pl = ol + t0[:, None] * dl
    inner = ((pl.abs() < half - 0.01) | (torch.arange(3) == axis)).all(-1)  # not within 0.01 of an edge
    hit = ((t1 - t0 > 0.02) & (cos > 0.1) & inner).reshape(3, 64, 64)  # clearly hit, not grazing
    z = (t0 * (d * cams.forward.double().repeat_interleave(64 * 64, 0)).sum(-1)).reshape(3, 64, 64)
    assert (views.masks[..., 0][hit] > 0.5).all()
    assert (views.depth_z[..., 0].double() - z).abs()[hit].max() < 1e-3
    # Rays marked hit that analytically miss must pass within a pixel footprint (~0.03 here) of the box.
    false_hits = ((views.masks[..., 0] > 0.5).reshape(-1) & (t1 <= t0)).nonzero()[:, 0]
    ts = torch.linspace(0.0, 5.0, 4001, dtype=torch.float64)
    for k in false_hits.tolist():
        q = (ol[k] + ts[:, None] * dl[k]).abs() - half
        dist = q.clamp_min(0).norm(dim=-1) + q.max(-1).values.clamp_max(0)
        assert dist.min() < 0.01


def test_multiview_consistency_under_ambient_light():
    """A surface point seen from two cameras gets the same colour. View B is rendered as an image;
    each of its surface points is then looked at from camera A's centre by a 1x1-pixel camera
    whose single ray passes exactly through it (so no pixel interpolation is involved)."""
    obj = object_for_seed(3)
    cams = object_rig(torch.Generator().manual_seed(0), 2, 64)
    vb = render_sdf(obj, cams[1], Lighting.ambient_only())
    ii, jj = torch.nonzero(vb.masks[0, ..., 0] > 0.5, as_tuple=True)
    keep = torch.arange(0, len(ii), max(1, len(ii) // 400))
    ii, jj = ii[keep], jj[keep]
    o, d = cams[1].rays()
    t = vb.depth_z[0, ii, jj, 0] / (d[0, ii, jj] @ cams.forward[1])
    X = o[0, ii, jj] + t[:, None] * d[0, ii, jj]
    eye = cams.centers[0].expand_as(X)
    rays_a = Cameras.look_at(eye, X, fov_deg=0.05, width=1, height=1)  # narrow: a tight stopping cone
    va = render_sdf(obj, rays_a, Lighting.ambient_only())
    visible = (va.masks[:, 0, 0, 0] > 0.5) & ((va.depth_z[:, 0, 0, 0] - (X - eye).norm(dim=-1)).abs() < 1e-3)
    assert visible.sum() > 100
    # Hit points agree to ~1e-4; a few land on opposite sides of a hard texture edge (checkers,
    # stripes), fine grain noise changes by ~1e-3 over that distance.
    diff = (va.images[:, 0, 0][visible] - vb.images[0, ii, jj][visible]).abs().amax(-1)
    assert diff.median() < 1e-4 and (diff < 0.01).float().mean() > 0.95
    to_albedo = (vb.images[0, ii, jj] - obj.albedo(X)).abs().amax(-1)
    assert to_albedo.median() < 1e-4 and (to_albedo < 0.01).float().mean() > 0.95


def test_lighting_shades_and_shadows():
    floor = S.Similarity(S.Box(half=(1.5, 1.5, 0.05)), translation=(0, 0, -0.5))
    blocker = S.Similarity(S.Sphere(radius=0.25), translation=(0, 0, 0.2))
    obj = ProceduralObject(S.Union([floor, blocker]), [Solid(color=(1.0, 1.0, 1.0))], (-1.5, -1.5, -0.55), (1.5, 1.5, 0.45))
    cams = Cameras.look_at(torch.tensor([[0.0, 0.01, 2.5]]), torch.zeros(3), fov_deg=50, width=48, height=48)
    L = torch.tensor([0.6, 0.0, 0.8])
    light = Lighting(direction=tuple(L.tolist()), intensity=0.6, ambient=0.3, sky=0.0, specular=0.0)
    v = render_sdf(obj, cams, light)
    img = v.images[0].mean(-1)

    def pixel(p):
        uv, _ = cams.project(torch.tensor([p]))
        return int(uv[0, 0, 1]), int(uv[0, 0, 0])

    top = pixel([0.0, 0.0, 0.45])
    expected = 0.3 + 0.6 * float(v.normals[0][top] @ L)
    assert abs(float(img[top]) - expected) < 0.01  # Lambert + ambient where unshadowed
    shadow = pixel([-0.65 * 0.6 / 0.8, 0.0, -0.45])  # the sphere's centre cast along -L onto the floor
    lit = pixel([0.8, 0.5, -0.45])
    assert abs(float(img[lit]) - 0.78) < 0.01  # 0.3 + 0.6 * 0.8
    assert float(img[shadow]) < 0.35  # ambient only in the umbra
    amb = render_sdf(obj, cams, Lighting.ambient_only())
    assert torch.equal(amb.images[amb.masks[..., 0] > 0], torch.ones(int(amb.masks.sum()), 3))


# ---- items ----------------------------------------------------------------------------------


def test_make_item_is_deterministic_and_seeded():
    a = make_item(5, n_inputs=2, n_targets=1, size=32, sdf_samples=64)
    b = make_item(5, n_inputs=2, n_targets=1, size=32, sdf_samples=64)
    for x, y in [(a.inputs.images, b.inputs.images), (a.targets.depth_z, b.targets.depth_z), (a.inputs.masks, b.inputs.masks),
                 (a.inputs.cameras.c2w, b.inputs.cameras.c2w), (a.sdf.points, b.sdf.points), (a.sdf.sdf, b.sdf.sdf)]:
        assert torch.equal(x, y)
    c = make_item(6, n_inputs=2, n_targets=1, size=32)
    assert not torch.equal(a.inputs.images, c.inputs.images)
    assert a.inputs.images.shape == (2, 32, 32, 3) and a.targets.images.shape == (1, 32, 32, 3)
    assert a.inputs.images.dtype == torch.float32 and 0 <= float(a.inputs.images.min()) and float(a.inputs.images.max()) <= 1
    assert a.meta["seed"] == 5 and a.meta["kind"] == "object" and a.meta["n_parts"] == object_for_seed(5).n_parts
    bg = a.inputs.masks[..., 0] == 0
    assert bg.any() and torch.equal(a.inputs.images[bg], torch.ones_like(a.inputs.images[bg]))  # white background
    assert (a.inputs.depth_z[bg] == 0).all() and (a.inputs.depth_z[~bg] > 0).all()
    torch.testing.assert_close(a.sdf.sdf, object_for_seed(5).sdf(a.sdf.points))


def test_scene_items_are_full_frame():
    item = make_item(2, n_inputs=2, n_targets=1, size=32, scene=True)
    assert item.meta["kind"] == "scene" and item.meta["n_objects"] >= 1
    assert (item.inputs.masks == 1).all() and (item.targets.masks == 1).all()
    assert (item.inputs.depth_z > 0).all()
    scene = object_for_seed(2, scene=True)
    assert scene.room is not None and (scene.room.sdf(item.inputs.cameras.centers) > 0).all()  # cameras inside the room
    objects_only = render_sdf(scene, item.inputs.cameras, mask="objects")
    assert 0 < float(objects_only.masks.mean()) < 1


def test_rigs_look_at_the_content():
    cams = object_rig(torch.Generator().manual_seed(1), 6, 64)
    cams.validate()
    uv, z = cams.project(torch.zeros(1, 3))
    assert (z > 0).all() and ((uv - 32).abs() < 12).all()
    d = cams.centers.norm(dim=-1)
    assert d.min() > 0.9 and d.max() / d.min() > 1.05  # varied distances
    ff = forward_rig(torch.Generator().manual_seed(2), 5, 64, target=(0.0, 0.0, 0.3))
    ff.validate()
    f = ff.forward
    assert (f @ f.mean(0) / f.mean(0).norm() > 0.95).all()  # all looking roughly the same way
    spread = (ff.centers - ff.centers.mean(0)).norm(dim=-1).max()
    assert 0 < spread < 0.5 * (ff.centers.mean(0) - torch.tensor([0.0, 0.0, 0.3])).norm()


# ---- exact geometry ---------------------------------------------------------------------------


def test_ground_truth_mesh_of_a_sphere():
    trimesh = pytest.importorskip("trimesh")
    obj = _obj(S.Sphere(radius=0.6), (-0.6, -0.6, -0.6), (0.6, 0.6, 0.6))
    mesh = ground_truth_mesh(obj, resolution=48)
    h = 1.2 * (1 + 4 / 47) / 47  # grid cell
    r = mesh.vertices.norm(dim=-1)
    assert (r - 0.6).abs().max() < 0.1 * h + 1e-4  # marching cubes on exact values: tiny chordal error
    tm = trimesh.Trimesh(mesh.vertices.numpy(), mesh.faces.numpy(), process=True)
    assert tm.is_watertight and abs(tm.volume / (4 / 3 * math.pi * 0.6**3) - 1) < 0.02  # positive: outward faces
    assert mesh.vertex_colors.shape == mesh.vertices.shape


def test_ground_truth_mesh_of_a_random_object_is_closed():
    trimesh = pytest.importorskip("trimesh")
    obj = object_for_seed(1)
    mesh = ground_truth_mesh(obj, resolution=64)
    assert mesh.faces.shape[0] > 100 and mesh.faces.dtype == torch.int64
    assert obj.sdf(mesh.vertices).abs().max() < 0.03
    tm = trimesh.Trimesh(mesh.vertices.numpy(), mesh.faces.numpy(), process=True)
    assert tm.volume > 0


def test_surface_and_sdf_samples():
    obj = object_for_seed(4)
    gen = torch.Generator().manual_seed(0)
    pts, normals, colors = surface_samples(obj, gen, 500)
    assert pts.shape == (500, 3) and obj.sdf(pts).abs().max() < 1e-4
    assert torch.allclose(normals.norm(dim=-1), torch.ones(500), atol=1e-4)
    assert colors.shape == (500, 3) and 0 <= float(colors.min()) and float(colors.max()) <= 1
    s = sdf_samples(obj, gen, 1000)
    assert s.points.shape == (1000, 3) and s.sdf.shape == (1000,) and s.colors.shape == (1000, 3)
    assert (s.sdf < 0).any() and (s.sdf > 0).any()
    assert s.points.abs().max() <= 1.0 + 1e-5
    torch.testing.assert_close(s.sdf, obj.sdf(s.points))


def test_materials_and_scenes_are_varied():
    gen = torch.Generator().manual_seed(3)
    kinds = {type(random_material(gen)).__name__ for _ in range(60)}
    assert len(kinds) >= 6
    p = _points(500, seed=12)
    for _ in range(10):
        c = random_material(gen).albedo(p)
        assert c.shape == (500, 3) and float(c.min()) >= 0 and float(c.max()) <= 1
    styles = {random_object(torch.Generator().manual_seed(s)).info["style"] for s in range(24)}
    assert len(styles) >= 4
    scene = random_scene(torch.Generator().manual_seed(4))
    assert scene.bbox_min[2] <= 0.0 + 1e-3 and scene.room is not None


@pytest.mark.cuda
def test_cuda_render_matches_cpu():
    cpu = make_item(7, n_inputs=1, n_targets=1, size=48)
    gpu = make_item(7, n_inputs=1, n_targets=1, size=48, device="cuda")
    assert (cpu.inputs.masks != gpu.inputs.masks.cpu()).float().mean() < 0.01
    both = (cpu.inputs.masks > 0) & (gpu.inputs.masks.cpu() > 0)
    assert (cpu.inputs.depth_z - gpu.inputs.depth_z.cpu()).abs()[both].median() < 1e-4


def test_a_boolean_tree_without_an_inside_is_rejected_and_thin_shapes_are_kept():
    from recon.data.procedural.objects import _normalised, occupied_box, reaches_inside

    # Everything subtracted: the SDF dips to 0.01 (within the near-surface margin) but is never negative.
    empty = S.Subtract(S.Sphere(radius=0.5), S.Sphere(radius=0.52))
    _, _, near, margin = occupied_box(empty)
    assert near.shape[0] >= 8 and float(empty.distance(near).min()) > 0  # the old size test passed it
    assert not reaches_inside(empty, near, margin)
    assert _normalised(empty, 0.9) is None
    # A plate thinner than a grid cell, between the grid's nodes, does have an inside.
    plate = S.Similarity(S.Box(half=(0.5, 0.4, 0.003)), translation=(0.0, 0.0, 0.011))
    _, _, near, margin = occupied_box(plate)
    assert float(plate.distance(near).min()) > 0 and reaches_inside(plate, near, margin)
    assert _normalised(plate, 0.9) is not None


def test_validation_object_10000043_is_no_longer_empty():
    # Its first draw was a subtraction that removed everything (blank views, a mesh without faces).
    obj = object_for_seed(10_000_043)
    p = torch.tensor(obj.bbox_min) + torch.rand(200_000, 3, generator=torch.Generator().manual_seed(0)) * (
        torch.tensor(obj.bbox_max) - torch.tensor(obj.bbox_min))
    assert (obj.sdf(p) < 0).float().mean() > 0.01  # a solid share of its box, not a sliver
