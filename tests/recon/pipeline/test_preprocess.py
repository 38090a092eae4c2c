"""Preprocessing: masks (alpha, GrabCut, fallbacks), the recentring crop and the model resize keep K exact."""

from __future__ import annotations

import math

import pytest
import torch

from recon.core.errors import ReconError
from recon.pipeline.inputs import LoadedImage
from recon.pipeline.preprocess import (
    PreparedViews,
    foreground_mask,
    model_size,
    recentre_crop,
    resize_to_model,
)
from renderer.cameras import Cameras, intrinsics_matrix


def _disc_image(h: int = 160, w: int = 192, centre=(104.0, 76.0), radius: float = 42.0, seed: int = 0):
    """A reddish disc on a textured gray background: ``(LoadedImage, true mask [h, w] bool)``."""
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    stripes = 0.08 * torch.sin(x / 3.0) * torch.cos(y / 5.0)
    bg = (0.5 + stripes + 0.04 * torch.randn(h, w, generator=g))[..., None].expand(h, w, 3)
    fg = torch.tensor([0.85, 0.30, 0.20]) + 0.04 * torch.randn(h, w, 3, generator=g)
    inside = (x - centre[0]) ** 2 + (y - centre[1]) ** 2 <= radius**2
    rgb = torch.where(inside[..., None], fg, bg).clamp(0, 1).float()
    return LoadedImage(rgb, None, "disc.png"), inside


def _iou(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a & b).sum()) / float((a | b).sum())


# ---- masks ------------------------------------------------------------------------------------


@pytest.mark.parametrize("work_size", [512, 80])  # 80: GrabCut on a downscaled copy, mask upsampled
def test_grabcut_finds_disc(work_size):
    img, truth = _disc_image()
    res = foreground_mask(img, work_size=work_size)  # no alpha: GrabCut
    assert res.method == "grabcut" and res.warning is None
    assert res.mask.shape == truth.shape and res.mask.dtype == torch.float32
    assert _iou(res.mask > 0.5, truth) > 0.9
    again = foreground_mask(img, work_size=work_size)
    assert torch.equal(again.mask, res.mask)  # deterministic


def test_grabcut_failure_falls_back_with_warning():
    flat = LoadedImage(torch.full((64, 80, 3), 0.6), None, "flat.jpg")
    res = foreground_mask(flat, "grabcut")
    assert res.method == "none" and bool((res.mask == 1).all())
    assert res.warning is not None and res.warning.startswith("flat.jpg: ") and "whole image" in res.warning
    assert "\n" not in res.warning


def test_alpha_mask_and_its_fallbacks():
    img, truth = _disc_image()
    alpha = truth.float() * 0.9 + 0.05
    with_alpha = LoadedImage(img.rgb, alpha, "a.png")
    res = foreground_mask(with_alpha)
    assert res.method == "alpha" and res.warning is None and torch.equal(res.mask, alpha)

    forced = foreground_mask(with_alpha, "grabcut")  # GrabCut even with alpha
    assert forced.method == "grabcut" and _iou(forced.mask > 0.5, truth) > 0.9

    opaque = foreground_mask(LoadedImage(img.rgb, torch.ones(truth.shape), "o.png"))
    assert opaque.method == "grabcut" and "fully opaque" in opaque.warning
    assert _iou(opaque.mask > 0.5, truth) > 0.9

    whole = foreground_mask(img, "none")
    assert whole.method == "none" and whole.warning is None and bool((whole.mask == 1).all())
    with pytest.raises(ValueError, match="unknown mask method"):
        foreground_mask(img, "magic")


# ---- recentring crop --------------------------------------------------------------------------


def _camera(W: int = 192, H: int = 160) -> Cameras:
    """A posed camera with an off-centre principal point and unequal focal lengths, float64."""
    angle = 0.3
    c2w = torch.eye(4, dtype=torch.float64)
    c2w[:3, :3] = torch.tensor([[math.cos(angle), 0, math.sin(angle)], [0, 1, 0], [-math.sin(angle), 0, math.cos(angle)]],
                               dtype=torch.float64)
    c2w[:3, 3] = torch.tensor([0.4, -0.2, -3.0], dtype=torch.float64)
    K = intrinsics_matrix(210.7, 205.3, 97.4, 81.9, dtype=torch.float64)
    return Cameras(c2w, K, W, H)


@pytest.mark.parametrize("box", [(40, 50, 110, 100), (150, 110, 190, 158)])  # inside; at the corner (padding)
def test_recentre_crop_keeps_K_exact(box):
    cam = _camera()
    W, H = cam.width, cam.height
    # A known 3D point and where it lands in the source image.
    x_lo, y_lo, x_hi, y_hi = box
    uv_target = torch.tensor([[(x_lo + x_hi) / 2 + 3.3, (y_lo + y_hi) / 2 - 2.7]], dtype=torch.float64)
    ray = torch.linalg.inv(cam.K[0]) @ torch.tensor([*uv_target[0], 1.0], dtype=torch.float64)
    X = (cam.c2w[0, :3, :3] @ (2.5 * ray) + cam.c2w[0, :3, 3])[None]
    uv, _ = cam.project(X)
    assert float((uv[0] - uv_target).abs().max()) < 1e-9

    # The image: a bright Gaussian blob at uv, the mask the given box.
    y, x = torch.meshgrid(torch.arange(H) + 0.5, torch.arange(W) + 0.5, indexing="ij")
    blob = torch.exp(-((x - uv[0, 0, 0]) ** 2 + (y - uv[0, 0, 1]) ** 2) / (2 * 4.0**2)).float()
    rgb = torch.stack([blob, blob, blob], -1)
    mask = torch.zeros(H, W)
    mask[y_lo:y_hi, x_lo:x_hi] = 1
    out_size = 64
    res = recentre_crop(LoadedImage(rgb, None, "p.png"), mask, cam.K[0], 0.85, out_size=out_size,
                        background=(0.0, 0.0, 0.0), composite=False)  # black padding, like the photo

    # The window: square, centred on the box, the object spanning foreground_ratio of it.
    x0, y0, side, side_h = res.window
    assert side == side_h == math.ceil(max(x_hi - x_lo, y_hi - y_lo) / 0.85)
    assert abs(x0 + side / 2 - (x_lo + x_hi) / 2) <= 0.5 and abs(y0 + side / 2 - (y_lo + y_hi) / 2) <= 0.5
    assert res.rgb.shape == (out_size, out_size, 3) and res.mask.shape == (out_size, out_size)
    assert res.K.dtype == torch.float64 and res.source_size == (W, H)

    # The point through the new K lands where its pixel went: (uv - window origin) * out / side.
    uv_new, _ = Cameras(cam.c2w, res.K, out_size, out_size).project(X)
    expected = (uv[0] - torch.tensor([x0, y0], dtype=torch.float64)) * (out_size / side)
    assert float((uv_new[0] - expected).abs().max()) < 1e-4
    assert float((res.source_to_output(uv[0]) - expected).abs().max()) < 1e-12

    # And the pixels agree: the blob's centroid in the output sits at the reprojected point.
    img = res.rgb[..., 0].double()
    yy, xx = torch.meshgrid(torch.arange(out_size) + 0.5, torch.arange(out_size) + 0.5, indexing="ij")
    w = (img - img.amin()).clamp(min=0)
    centroid = torch.stack([(w * xx).sum() / w.sum(), (w * yy).sum() / w.sum()]).double()
    assert float((centroid - uv_new[0, 0]).abs().max()) < 0.05


def test_recentre_crop_pads_with_white_and_composites():
    H, W = 60, 80
    rgb = torch.zeros(H, W, 3)  # black photo
    mask = torch.zeros(H, W)
    mask[0:20, 60:80] = 1  # object in the top-right corner: the window leaves the photo
    K = intrinsics_matrix(70.0, 70.0, 40.0, 30.0)
    res = recentre_crop(LoadedImage(rgb, None, "c.png"), mask, K, out_size=24)
    x0, y0, side, _ = res.window
    assert x0 + side > W and y0 < 0
    outside = res.mask < 1e-6
    assert bool(outside.any()) and bool((res.rgb[outside] == 1).all())  # background is white
    inside = res.mask > 1 - 1e-6
    assert bool(inside.any()) and float(res.rgb[inside].max()) < 1e-6  # the object keeps its colour
    # Without compositing, the photo's own background shows inside the photo.
    raw = recentre_crop(LoadedImage(rgb, None, "c.png"), mask, K, out_size=24, composite=False)
    assert float(raw.rgb.min()) == 0.0 and float(raw.rgb.max()) == 1.0

    with pytest.raises(ValueError, match="empty mask"):
        recentre_crop(LoadedImage(rgb, None, "c.png"), torch.zeros(H, W), K, out_size=24)


# ---- scene / posed path -----------------------------------------------------------------------


def test_resize_to_model_keeps_K_exact():
    cam = _camera(W=640, H=480)
    X = torch.tensor([[0.1, 0.2, 0.5], [-0.3, 0.1, 0.0]], dtype=torch.float64)
    uv, _ = cam.project(X)
    img = LoadedImage(torch.rand(480, 640, 3), torch.ones(480, 640), "s.png")
    views = resize_to_model([img, img], cam.K[0], long_side=256, multiple=14)
    assert (views.width, views.height) == model_size(640, 480, 256, 14) == (252, 196)
    assert views.width % 14 == 0 and views.height % 14 == 0
    assert views.images.shape == (2, 196, 252, 3) and views.masks.shape == (2, 196, 252) and views.K.shape == (2, 3, 3)
    uv_new, _ = views.cameras(cam.c2w.expand(2, 4, 4)).project(X)
    expected = uv[0] * torch.tensor([252 / 640, 196 / 480], dtype=torch.float64)
    assert float((uv_new - expected).abs().max()) < 1e-4
    v = views.to_views(cam.c2w.expand(2, 4, 4).float())
    assert v.masks.shape == (2, 196, 252, 1) and v.names == ["s.png", "s.png"]


def test_resize_to_model_sizes():
    same_aspect = [LoadedImage(torch.rand(48, 64, 3), None, "a.png"), LoadedImage(torch.rand(96, 128, 3), None, "b.png")]
    K = intrinsics_matrix([50.0, 100.0], [50.0, 100.0], [32.0, 64.0], [24.0, 48.0])
    views = resize_to_model(same_aspect, K, 32, 8)
    assert (views.width, views.height) == (32, 24) and views.masks is None
    assert torch.allclose(views.K[0], views.K[1])
    other = LoadedImage(torch.rand(64, 64, 3), None, "square.png")
    with pytest.raises(ReconError, match="a.png .* and square.png"):
        resize_to_model([same_aspect[0], other], K[0], 32, 8)


def test_prepared_views_stack_crops():
    img, truth = _disc_image()
    K = intrinsics_matrix(150.0, 150.0, 96.0, 80.0)
    crops = [recentre_crop(img, truth.float(), K, out_size=32) for _ in range(2)]
    views = PreparedViews.stack(crops)
    assert views.images.shape == (2, 32, 32, 3) and views.masks.shape == (2, 32, 32)
    assert views.windows == [crops[0].window] * 2 and views.names == ["disc.png"] * 2
