"""Silhouette carving: the visual-hull test against analytic sphere masks, and the Reconstructor's use of it."""

from __future__ import annotations

import pytest
import torch

from recon.core.errors import ReconError
from recon.core.resize import resize_masks
from recon.data.procedural.item import make_item
from recon.inference import Reconstructor
from recon.inference.carve import outside_mask_votes
from recon.models.adapter import pixel_rays
from renderer import Cameras

RADIUS = 0.5


def _sphere_masks(cams: Cameras) -> torch.Tensor:
    """Exact masks ``[V, H, W]`` of a sphere of ``RADIUS`` at the origin: 1 where the pixel-centre ray hits it."""
    d = torch.nn.functional.normalize(pixel_rays(cams.K, cams.height, cams.width), dim=-1)  # camera frame
    d_w = d @ cams.c2w[:, None, :3, :3].transpose(-1, -2)  # [V, H, W, 3]
    o = cams.c2w[:, None, None, :3, 3]
    b = (d_w * o).sum(-1)
    disc = b * b - ((o * o).sum(-1) - RADIUS**2)
    return (disc > 0).float()


def _random_points(n: int, r_lo: float, r_hi: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    dirs = torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=-1)
    return dirs * (r_lo + (r_hi - r_lo) * torch.rand(n, 1, generator=g))


def test_points_inside_the_hull_keep_and_floaters_are_voted_out():
    cams = Cameras.orbit(4, radius=3.0, elevation_deg=20.0, fov_deg=40.0, width=64, height=64)
    masks = _sphere_masks(cams)
    assert 0.05 < float(masks.mean()) < 0.5
    inner = _random_points(500, 0.0, 0.45, seed=0)  # inside the sphere: inside every silhouette
    votes = outside_mask_votes(inner, torch.zeros(500, dtype=torch.long), cams.c2w, cams.K, masks)
    assert int(votes.max()) == 0
    # Around the sphere: the expected votes from the silhouette cone of every other camera (a point is
    # outside view j's silhouette when its ray makes an angle over asin(R / |c_j|) with the ray to the
    # centre); points within 1.5 pixels of a silhouette or image edge are left out of the comparison.
    pts = _random_points(2000, 0.3, 1.2, seed=1)
    source = torch.arange(2000) % 4
    votes = outside_mask_votes(pts, source, cams.c2w, cams.K, masks)
    expected = torch.zeros(2000, dtype=torch.long)
    clear = torch.ones(2000, dtype=torch.bool)
    px = 1.5 / float(cams.K[0, 0, 0])  # radians per 1.5 pixels near the image centre
    for j in range(4):
        c = cams.c2w[j, :3, 3]
        ray, to_centre = torch.nn.functional.normalize(pts - c, dim=-1), torch.nn.functional.normalize(-c, dim=0)
        angle = torch.acos((ray @ to_centre).clamp(-1, 1))
        cone = torch.asin(torch.tensor(RADIUS) / c.norm())
        p_cam = (pts - c) @ cams.c2w[j, :3, :3]
        uv = p_cam[:, :2] / p_cam[:, 2:] * cams.K[j, 0, 0] + cams.K[j, :2, 2]
        in_image = (uv > 1.5).all(-1) & (uv < 64 - 1.5).all(-1)
        clear &= ((angle - cone).abs() > 2 * px) & (in_image | ((uv < -1.5) | (uv > 64 + 1.5)).any(-1))
        expected += ((source != j) & in_image & (angle > cone)).long()
    assert int(clear.sum()) > 500 and int(expected[clear].max()) >= 2
    assert torch.equal(votes[clear], expected[clear])
    # A point that only its own view would reject keeps: with one view there is nobody else to ask.
    one = outside_mask_votes(pts, torch.zeros(2000, dtype=torch.long), cams.c2w[:1], cams.K[:1], masks[:1])
    assert int(one.max()) == 0
    # Behind a camera, or outside its image, a view has no say.
    behind = cams.c2w[1, :3, 3] * 1.5  # beyond camera 1, away from the sphere: behind it
    side = torch.tensor([0.0, 0.0, 50.0])  # far above the orbit: outside every 40-degree image
    v = outside_mask_votes(torch.stack([behind, side]), torch.tensor([0, 0]), cams.c2w, cams.K, masks)
    assert int(v[1]) == 0
    single = outside_mask_votes(behind[None], torch.tensor([0]), cams.c2w[[0, 1]], cams.K[[0, 1]], masks[[0, 1]])
    assert int(single[0]) <= 1  # camera 0 may see it on its background; camera 1 (behind) must not vote
    w2c1 = torch.linalg.inv(cams.c2w[1])
    assert float((w2c1[:3, :3] @ behind + w2c1[:3, 3])[2]) < 0


def test_resize_masks_matches_image_resizing():
    m = torch.zeros(2, 8, 8, 1)
    m[:, 2:6, 2:6] = 1
    r = resize_masks(m, 4, 4)
    assert r.shape == (2, 4, 4) and float(r.min()) >= 0 and float(r.max()) <= 1
    assert torch.allclose(r.sum((1, 2)) * 4, m[..., 0].sum((1, 2)), rtol=0.05)
    assert torch.equal(resize_masks(m, 8, 8), m[..., 0])


def test_reconstructor_carves_only_with_masks(tiny_model):
    """With masks, no kept Gaussian lies on another view's background; without masks (or with
    ``carve_votes=0``) nothing is carved; with all-foreground masks nothing is carved either."""
    views = make_item(3, n_inputs=3, n_targets=0, size=32).inputs
    kw = {"dtype": torch.float32, "min_opacity": 0.0}
    plain = Reconstructor(tiny_model, carve_votes=0, **kw)
    carving = Reconstructor(tiny_model, **kw)
    assert carving.carve_votes == 1 and carving.reconstruct(views).info["carve_votes"] == 1
    base = plain.predict(views)[0]
    pg, frame, cams = carving.predict(views)
    assert torch.equal(pg.means, base.means) and torch.equal(pg.scales, base.scales)
    dropped = (pg.opacities == 0) & (base.opacities > 0)
    assert dropped.any() and not ((pg.opacities != base.opacities) & ~dropped).any()
    canon = frame.cameras_to_canonical(cams)
    V, h, w = pg.opacities.shape[1:]
    source = torch.arange(V).repeat_interleave(h * w)
    votes = outside_mask_votes(pg.means[0].reshape(-1, 3), source, canon.c2w, canon.K, resize_masks(views.masks, w, h))
    assert torch.equal(votes.reshape(pg.opacities.shape) > 0, pg.opacities == 0)

    no_masks = views.select([0, 1, 2])
    no_masks.masks = None
    assert torch.equal(carving.predict(no_masks)[0].opacities, base.opacities)
    full = views.select([0, 1, 2])
    full.masks = torch.ones_like(views.masks)
    assert torch.equal(carving.predict(full)[0].opacities, base.opacities)
    for bad in (-1, 1.5, True, "1"):
        with pytest.raises(ReconError, match="carve_votes must be a whole number"):
            Reconstructor(tiny_model, carve_votes=bad)
