"""Shapes and frames of every head's outputs, posed and unposed, and the unposed Reconstructor path."""

from __future__ import annotations

import pytest
import torch

from recon.core.errors import ReconError
from recon.core.resize import resize_masks
from recon.core.types import Views
from recon.data.procedural.item import make_item, object_for_seed
from recon.inference import Reconstructor
from recon.models import ModelOutput, ReconModel, preset
from renderer import Cameras
from tests.recon.models.helpers import gt_pointmap, relative_c2w

B, V, H, W = 2, 3, 32, 40


def _pixel_centres(h: int, w: int) -> torch.Tensor:
    v, u = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    return torch.stack([u, v], -1).float()  # [h, w, 2]


def _assert_on_rays(means: torch.Tensor, depth_z: torch.Tensor, cams: Cameras) -> None:
    """``means [V, h, w, 3]`` project to their own pixel centres at z = ``depth_z [V, h, w]``."""
    _, h, w, _ = means.shape
    for i in range(len(cams)):
        uv, z = cams[i].project(means[i].reshape(-1, 3))
        assert torch.allclose(uv[0].reshape(h, w, 2), _pixel_centres(h, w), atol=2e-3)
        assert torch.allclose(z[0].reshape(h, w), depth_z[i], rtol=1e-4, atol=1e-5)


def _assert_gaussians_valid(pg, b: int, v: int, h: int, w: int) -> None:
    assert pg.depth_z.shape == (b, v, h, w) and (pg.depth_z > 0).all()
    assert pg.means.shape == (b, v, h, w, 3) and torch.isfinite(pg.means).all()
    assert pg.quats_wxyz.shape == (b, v, h, w, 4)
    assert torch.allclose(pg.quats_wxyz.norm(dim=-1), torch.ones(b, v, h, w), atol=1e-5)
    assert pg.scales.shape == (b, v, h, w, 3) and (pg.scales > 0).all()
    assert pg.opacities.shape == (b, v, h, w) and ((pg.opacities >= 0) & (pg.opacities < 1)).all()
    assert pg.rgb.shape == (b, v, h, w, 3) and ((pg.rgb >= 0) & (pg.rgb <= 1)).all()


def test_posed_outputs_shapes_and_frames(tiny_model):
    cfg = tiny_model.cfg
    cams = Cameras.orbit(V, radius=2.5, width=W, height=H)  # already a unit-ball canonical frame
    c2w, K = cams.c2w[None].expand(B, -1, -1, -1), cams.K[None].expand(B, -1, -1, -1)
    images = torch.rand(B, V, 3, H, W, generator=torch.Generator().manual_seed(0))
    pts = torch.rand(B, 50, 3) * 2 - 1
    with torch.no_grad():
        out: ModelOutput = tiny_model(images, c2w, K, torch.ones(B, dtype=torch.bool), sdf_points=pts)

    D = cfg.backbone.num_planes
    _assert_gaussians_valid(out.gaussians, B, V, H, W)
    for b in range(B):
        _assert_on_rays(out.gaussians.means[b], out.gaussians.depth_z[b], cams)
    assert out.gaussian_raw.shape == (B * V, 12, H, W)
    assert out.depth_logits.shape == (B * V, D, H // 4, W // 4)
    assert out.near.shape == out.far.shape == (B, V) and (0 < out.near).all() and (out.near < out.far).all()
    # The predicted depth stays within the planes' range (refinement bounded by ``refine_range``).
    r = torch.exp(torch.tensor(cfg.adapter.refine_range))
    assert (out.gaussians.depth_z >= out.near[..., None, None] / r - 1e-4).all()
    assert (out.gaussians.depth_z <= out.far[..., None, None] * r + 1e-4).all()
    assert out.pointmap.shape == (B, V, H, W, 3) and torch.isfinite(out.pointmap).all()
    assert out.conf.shape == (B, V, H, W) and (out.conf >= 1).all()
    tc = cfg.triplane_head
    assert out.planes.shape == (B, 3, tc.plane_channels, tc.plane_res, tc.plane_res)
    assert out.sdf.shape == (B, 50) and torch.isfinite(out.sdf).all()
    assert out.sdf_rgb.shape == (B, 50, 3) and ((out.sdf_rgb >= 0) & (out.sdf_rgb <= 1)).all()
    sdf, rgb = tiny_model.sdf(out.planes, pts)
    assert torch.allclose(sdf, out.sdf) and torch.allclose(rgb, out.sdf_rgb)

    # Heads are optional per call.
    with torch.no_grad():
        only = tiny_model(images, c2w, K, heads=("pointmap",))
    assert only.gaussians is None and only.planes is None and only.pointmap is not None


def test_unposed_outputs_shapes(tiny_model):
    images = torch.rand(B, V, 3, H, W, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = tiny_model(images)
    assert out.gaussians is None and out.depth_logits is None and out.near is None
    assert out.gaussian_raw.shape == (B * V, 12, H, W)
    assert out.pointmap.shape == (B, V, H, W, 3) and out.conf.shape == (B, V, H, W)
    assert out.planes.shape[:2] == (B, 3)


def test_reconstruct_unposed_shapes_and_frames(tiny_model):
    """Untrained weights: the pose solver may fail on their pointmaps, but every output keeps its
    contract: sizes, cameras at the input resolution, Gaussians on the recovered cameras' rays."""
    rec = Reconstructor(tiny_model, dtype=torch.float32)
    images = torch.rand(2, 37, 50, 3, generator=torch.Generator().manual_seed(0))  # resized to 32 x 24
    pred = rec.predict_unposed(images)
    w, h = pred.cameras.width, pred.cameras.height
    assert (w, h) == (32, 24)
    _assert_gaussians_valid(pred.gaussians, 1, 2, h, w)
    _assert_on_rays(pred.gaussians.means[0], pred.gaussians.depth_z[0], pred.cameras)
    assert torch.equal(pred.cameras.c2w[0], torch.eye(4))

    r, cams = rec.reconstruct_unposed(images)
    assert (cams.width, cams.height) == (50, 37)
    assert torch.allclose(cams.K, pred.cameras.resize(50, 37).K) and torch.equal(cams.c2w, pred.cameras.c2w)
    assert len(r.gaussians) == int((pred.gaussians.opacities > rec.min_opacity).sum())
    assert r.info["mode"] == "unposed" and len(r.info["pose_solved"]) == 2
    with pytest.raises(ReconError):
        rec.reconstruct_unposed(torch.rand(2, 3, 37, 50))


class _ExactPointmapModel(ReconModel):
    """The tiny model with its pointmap head replaced by exact points (times an arbitrary scale)."""

    def __init__(self, points: torch.Tensor, conf: torch.Tensor):
        torch.manual_seed(0)
        super().__init__(preset("tiny"))
        self.points, self.points_conf = points, conf

    def forward(self, images, c2w=None, K=None, converged=None, heads=("gaussians",), sdf_points=None):
        out = super().forward(images, c2w, K, converged, heads, sdf_points)
        out.pointmap, out.conf = self.points[None], self.points_conf[None]
        return out


def test_reconstruct_unposed_with_exact_pointmaps():
    """Exact pointmaps in, true cameras and on-surface Gaussians out: the pose solver, the
    normalisation, ``depth_override`` placement and the rescaling of K to the input size together."""
    seed = 4
    big = make_item(seed, n_inputs=3, n_targets=0, size=64).inputs  # what the user gives
    small = make_item(seed, n_inputs=3, n_targets=0, size=32).inputs  # the working resolution of ``tiny``
    pts, valid = gt_pointmap(small)
    unit = pts[valid].norm(dim=-1).mean()  # world units per normalised unit
    noise = torch.randn(pts.shape, generator=torch.Generator().manual_seed(0))
    model_pts = 3.7 * torch.where(valid[..., None], pts, noise)  # any output scale must normalise away
    rec = Reconstructor(_ExactPointmapModel(model_pts, torch.where(valid, 5.0, 1.0)), dtype=torch.float32)

    r, cams = rec.reconstruct_unposed(big.images)

    assert all(r.info["pose_solved"])
    assert (cams.width, cams.height) == (64, 64)
    assert torch.allclose(cams.K, big.cameras.K, rtol=0.01)
    gt = relative_c2w(big)
    rot = torch.rad2deg(torch.acos((((cams.c2w[:, :3, :3].transpose(1, 2) @ gt[:, :3, :3])
                                      .diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1, 1)))
    assert (rot < 0.5).all()
    rig = torch.cdist(gt[:, :3, 3], gt[:, :3, 3]).max()
    assert ((cams.c2w[:, :3, 3] * unit - gt[:, :3, 3]).norm(dim=-1) < 0.01 * rig).all()

    # Foreground Gaussians, taken back to the item's world, lie on the object.
    pred = rec.predict_unposed(big.images)
    fg = valid.reshape(-1)
    means = pred.gaussians.means[0].reshape(-1, 3)[fg] * unit
    c2w0 = big.cameras.c2w[0]
    world = means @ c2w0[:3, :3].T + c2w0[:3, 3]
    sdf = object_for_seed(seed).sdf(world).abs()
    assert sdf.median() < 2e-3 and sdf.max() < 0.05
    assert (pred.gaussians.opacities[0].reshape(-1)[fg] > 0).all()


def test_posed_reconstruction_follows_the_world_frame(tiny_model):
    """``reconstruct`` returns Gaussians in the input world: moving and scaling the world moves and
    scales them the same way."""
    rec = Reconstructor(tiny_model, dtype=torch.float32)
    views = make_item(1, n_inputs=2, n_targets=0, size=32).inputs
    g = rec.reconstruct(views).gaussians
    moved = views.cameras.c2w.clone()
    moved[:, :3, 3] = 2.0 * moved[:, :3, 3] + torch.tensor([1.0, -3.0, 0.5])

    # with the masks too: silhouette carving must not depend on the world frame either
    g2 = rec.reconstruct(Views(views.images, Cameras(moved, views.cameras.K, 32, 32), masks=views.masks)).gaussians
    assert torch.allclose(g2.means, 2.0 * g.means + torch.tensor([1.0, -3.0, 0.5]), atol=1e-4)
    assert torch.allclose(g2.scales, 2.0 * g.scales, rtol=1e-4, atol=1e-6)


def test_unposed_masks_keep_a_confident_background_out_of_the_pose():
    """The pointmap loss never trains the background's confidence, and a trained head can rate it
    above the object's. Given masks, only object pixels count: exact object points with a *more*
    confident noise background still give the true cameras, and no selected point is off the mask."""
    seed = 4
    big = make_item(seed, n_inputs=3, n_targets=0, size=64).inputs
    small = make_item(seed, n_inputs=3, n_targets=0, size=32).inputs
    pts, valid = gt_pointmap(small)
    noise = torch.randn(pts.shape, generator=torch.Generator().manual_seed(1))
    rec = Reconstructor(_ExactPointmapModel(torch.where(valid[..., None], pts, noise), torch.where(valid, 1.6, 5.0)),
                        dtype=torch.float32)
    assert not rec.predict_unposed(big.images).pose.solved.all()  # the background outvotes the object
    pred = rec.predict_unposed(big.images, big.masks)
    assert pred.pose.solved.all()
    on_mask = (resize_masks(big.masks, 32, 32) >= 0.5).sum((1, 2))
    assert (pred.pose.num_points <= on_mask).all() and (pred.pose.num_points > 0).all()
    gt = relative_c2w(big)
    rot = torch.rad2deg(torch.acos((((pred.cameras.c2w[:, :3, :3].transpose(1, 2) @ gt[:, :3, :3])
                                      .diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1, 1)))
    assert (rot < 1.0).all()
    r, _ = rec.reconstruct_unposed(big.images, big.masks)
    assert r.info["pose_masks"] is True and all(r.info["pose_solved"])
    with pytest.raises(ReconError, match="do not match"):
        rec.predict_unposed(big.images, big.masks[:2])


def test_output_scale_puts_one_gaussian_on_each_input_pixel(tiny_model):
    """``output_scale = 2``: the backbone sees the images area-downsampled 2x (with K halved) and is
    exactly the scale-1 backbone there; the Gaussians and the pointmap come out at the input size,
    on the input cameras' pixel rays. The same weights load at either scale."""
    import dataclasses

    big = ReconModel(dataclasses.replace(preset("tiny"), output_scale=2)).eval()
    big.load_state_dict(tiny_model.state_dict(), strict=True)
    cams = Cameras.orbit(V, radius=2.5, width=2 * W, height=2 * H)
    c2w, K = cams.c2w[None].expand(B, -1, -1, -1), cams.K[None].expand(B, -1, -1, -1)
    images = torch.rand(B, V, 3, 2 * H, 2 * W, generator=torch.Generator().manual_seed(1))
    conv = torch.ones(B, dtype=torch.bool)
    with torch.no_grad():
        out = big(images, c2w, K, conv, heads=("gaussians", "pointmap"))
        small_cams = cams.resize(W, H)
        small = torch.nn.functional.avg_pool2d(images.reshape(B * V, 3, 2 * H, 2 * W), 2).reshape(B, V, 3, H, W)
        ref = tiny_model(small, small_cams.c2w[None].expand(B, -1, -1, -1), small_cams.K[None].expand(B, -1, -1, -1),
                         conv, heads=("gaussians",))
    _assert_gaussians_valid(out.gaussians, B, V, 2 * H, 2 * W)
    for b in range(B):
        _assert_on_rays(out.gaussians.means[b], out.gaussians.depth_z[b], cams)
    assert out.gaussian_raw.shape == (B * V, 12, 2 * H, 2 * W)
    assert out.pointmap.shape == (B, V, 2 * H, 2 * W, 3) and out.conf.shape == (B, V, 2 * H, 2 * W)
    # The plane logits come from the backbone and the head's coarse stages only: identical to the
    # scale-1 model's on the downsampled views.
    torch.testing.assert_close(out.depth_logits, ref.depth_logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.near, ref.near)
    with pytest.raises(ValueError, match="multiple of output_scale"):
        big(images[..., :-1], c2w, K, conv)
    with pytest.raises(ValueError, match="output_scale must be"):
        dataclasses.replace(preset("tiny"), output_scale=0)


def test_reconstructor_with_output_scale_works_at_the_input_multiple(tiny_model):
    import dataclasses

    big = ReconModel(dataclasses.replace(preset("tiny"), output_scale=2)).eval()
    big.load_state_dict(tiny_model.state_dict(), strict=True)
    rec = Reconstructor(big, dtype=torch.float32, min_opacity=0.0)
    assert rec.cfg.input_long_side == 64 and rec.cfg.input_multiple == 16
    item = make_item(3, n_inputs=2, n_targets=1, size=96)
    pg, _, cams = rec.predict(Views(item.inputs.images, item.inputs.cameras))
    assert (cams.width, cams.height) == (64, 64)  # the input's 96 px resized to the model's 64
    assert pg.means.shape == (1, 2, 64, 64, 3)
    assert len(rec.reconstruct(Views(item.inputs.images, item.inputs.cameras)).gaussians) == 2 * 64 * 64
