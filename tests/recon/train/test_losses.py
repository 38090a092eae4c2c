"""The pointmap loss: DUSt3R's confidence-weighted regression on surface pixels, and the pull of the
background's confidence to its floor (what lets the pose recovery trust confidence without masks)."""

from __future__ import annotations

import dataclasses

import torch

from recon.train.losses import LossWeights, normalise_points, pointmap_loss


def _case():
    g = torch.Generator().manual_seed(0)
    gt = torch.randn(2, 6, 6, 3, generator=g)
    pred = gt + 0.1 * torch.randn(2, 6, 6, 3, generator=g)
    valid = torch.zeros(2, 6, 6, dtype=torch.bool)
    valid[:, 1:5, 1:5] = True
    raw = torch.zeros(2, 6, 6, requires_grad=True)  # conf = 1 + exp(raw), as the head makes it
    return pred, gt, valid, raw


def test_surface_term_is_dustr_regression():
    pred, gt, valid, raw = _case()
    conf = 1 + raw.exp()
    w = LossWeights()
    gt_n = normalise_points(gt, valid)
    err = (normalise_points(pred, valid) - gt_n).norm(dim=-1)[valid]
    c = conf[valid]
    expected = (c * err - w.pointmap_conf_alpha * c.log()).mean() + w.pointmap_bg_conf * conf[~valid].log().mean()
    assert torch.allclose(pointmap_loss(pred, conf, gt_n, valid, w), expected)
    # with every pixel on a surface the background term is absent
    full = torch.ones_like(valid)
    gt_f = normalise_points(gt, full)
    err_f = (normalise_points(pred, full) - gt_f).norm(dim=-1)
    plain = (conf * err_f - w.pointmap_conf_alpha * conf.log()).mean()
    assert torch.allclose(pointmap_loss(pred, conf, gt_f, full, w), plain)


def test_background_confidence_is_pulled_down_and_only_there():
    pred, gt, valid, raw = _case()
    gt_n = normalise_points(gt, valid)
    pointmap_loss(pred, 1 + raw.exp(), gt_n, valid, LossWeights()).backward()
    assert (raw.grad[~valid] > 0).all()  # gradient descent lowers the background's confidence
    with_bg = raw.grad[valid].clone()
    raw.grad = None
    off = dataclasses.replace(LossWeights(), pointmap_bg_conf=0.0)
    pointmap_loss(pred, 1 + raw.exp(), gt_n, valid, off).backward()
    assert torch.equal(raw.grad[~valid], torch.zeros_like(raw.grad[~valid]))
    assert torch.allclose(raw.grad[valid], with_bg)  # the surface pixels' gradient does not depend on it
