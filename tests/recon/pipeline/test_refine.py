"""Refinement stage: raises input-view PSNR of a degraded prediction, keeps Gaussians anchored."""

import torch

from recon.data.procedural.item import make_item
from recon.eval.reference_methods import GroundTruthDepthMethod
from recon.pipeline.refine import RefineConfig, input_view_psnr, refine_gaussians
from renderer import Gaussians
from renderer.sh import SH_C0


def _degraded_prediction(seed: int = 3, size: int = 40):
    item = make_item(seed, n_inputs=3, n_targets=0, size=size)
    g = GroundTruthDepthMethod().reconstruct(item.inputs).gaussians
    gen = torch.Generator().manual_seed(0)
    noise = 0.15 * torch.randn(len(g), 1, 3, generator=gen) / SH_C0  # colour error of ~0.15
    return item.inputs, Gaussians(g.means, g.quats_wxyz, g.scales * 1.5, g.opacities, g.sh + noise)


def test_refinement_raises_input_view_psnr():
    views, g = _degraded_prediction()
    r = refine_gaussians(g, views, RefineConfig(steps=60, views_per_step=1))
    assert r.steps == 60
    assert abs(r.psnr_before - input_view_psnr(g, views, torch.ones(3))) < 1e-6
    assert r.psnr_after > r.psnr_before + 1.0, (r.psnr_before, r.psnr_after)
    # Anchored: positions move by far less than the object size.
    shift = (r.gaussians.means - g.means).norm(dim=-1)
    assert float(shift.median()) < 0.05


def test_zero_steps_returns_the_prediction_unchanged():
    views, g = _degraded_prediction(size=24)
    r = refine_gaussians(g, views, RefineConfig(steps=0))
    assert r.gaussians is g and r.psnr_after == r.psnr_before and r.steps == 0
