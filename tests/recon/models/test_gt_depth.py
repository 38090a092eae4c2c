"""GT depth through the adapter end to end: canonical frame -> Gaussians -> world, on the object.

If the canonical frame, the unprojection (pixel centres, K, c2w) or the way back to the world were
wrong, the foreground Gaussians would leave the object's surface and renders would not reproduce
the depth maps.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from recon.data.procedural.item import make_item, object_for_seed
from recon.models.adapter import GAUSSIAN_CHANNELS, AdapterConfig, gaussians_from_raw
from recon.models.frame import CanonicalFrame
from renderer import render

SIZE = 32


def _gaussians(views, frame: CanonicalFrame, raw: torch.Tensor):
    """Per-pixel Gaussians at the GT depth, canonical frame, ``[1, V, H, W, ...]``."""
    canon = frame.cameras_to_canonical(views.cameras)
    V, H, W, _ = views.images.shape
    depth = views.depth_z[..., 0][None] / frame.scale  # canonical units
    unused = torch.ones(V, 1, H // 4, W // 4)  # the coarse depth that ``depth_override`` replaces
    return gaussians_from_raw(AdapterConfig(), raw, unused, views.images.permute(0, 3, 1, 2)[None], canon.c2w[None],
                              canon.K[None], depth_override=depth)


@pytest.mark.parametrize("seed", [1, 4])
def test_gt_depth_gaussians_lie_on_the_surface(seed):
    item = make_item(seed, n_inputs=2, n_targets=1, size=SIZE)
    views = item.inputs
    V, H, W, _ = views.images.shape
    frame = CanonicalFrame.from_cameras(views.cameras)
    fg = views.depth_z[..., 0] > 0  # [V, H, W]
    pg = _gaussians(views, frame, torch.zeros(V, 12, H, W))
    assert torch.allclose(pg.depth_z[0], views.depth_z[..., 0] / frame.scale)

    g = frame.gaussians_to_world(pg.item(0))[fg.reshape(-1)]
    sdf = object_for_seed(seed).sdf(g.means).abs()
    # The tracer's hits are exact except near grazing rays, which count as hits within a fraction of
    # the pixel footprint: bound every point by half a footprint, and the typical point tightly.
    footprint = (views.depth_z[..., 0] / views.cameras.K[:, None, None, 0, 0])[fg]
    assert (sdf <= 0.5 * footprint).all()
    assert sdf.median() < 1e-4

    # Sharp, opaque Gaussians rendered from the input cameras give back the depth maps where the
    # surface is smooth (no depth edge within a pixel: there splatting blends both sides).
    raw = torch.zeros(V, 12, H, W)
    raw[:, GAUSSIAN_CHANNELS["opacity"]] = 4.0
    raw[:, GAUSSIAN_CHANNELS["scale"]] = -10.0  # the smallest footprint the adapter allows
    g = frame.gaussians_to_world(_gaussians(views, frame, raw).item(0))[fg.reshape(-1)]
    out = render(g, views.cameras)
    gt = views.depth_z[..., 0]
    far = torch.where(fg, gt, torch.full_like(gt, 1e3))[:, None]
    spread = F.max_pool2d(far, 3, 1, 1)[:, 0] + F.max_pool2d(-far, 3, 1, 1)[:, 0]
    smooth = fg & (spread < 0.05 * gt)
    assert smooth.sum() >= 20
    rel = (out.depth[..., 0] - gt).abs() / gt.clamp_min(1e-6)
    assert rel[smooth].max() < 0.03 and rel[smooth].median() < 0.01
    assert rel[fg].median() < 0.02
    assert out.alpha[..., 0][smooth].min() > 0.99
