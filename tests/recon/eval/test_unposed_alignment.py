"""Unposed methods are scored after a similarity alignment of their cameras to the protocol's."""

from __future__ import annotations

import math

import torch

from recon.data.procedural.item import make_item
from recon.eval.interface import Reconstruction
from recon.eval.reference_methods import GroundTruthDepthMethod
from recon.eval.runner import align_unposed
from renderer import Cameras, render


def _rotation(angle: float) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ torch.tensor(
        [[1.0, 0.0, 0.0], [0.0, math.cos(0.4), -math.sin(0.4)], [0.0, math.sin(0.4), math.cos(0.4)]])


def test_align_unposed_undoes_a_similarity():
    item = make_item(5, n_inputs=4, n_targets=1, size=32)
    g = GroundTruthDepthMethod().reconstruct(item.inputs).gaussians
    # The "method's own frame": x' = s R x + t.
    s, R, t = 0.37, _rotation(0.9), torch.tensor([0.3, -1.2, 2.0])
    g_own = g.transform(scale=s, R=R, t=t)
    c2w = item.inputs.cameras.c2w.clone()
    c2w_own = c2w.clone()
    c2w_own[:, :3, :3] = R @ c2w[:, :3, :3]
    c2w_own[:, :3, 3] = s * c2w[:, :3, 3] @ R.T + t
    rec = Reconstruction(g_own, None, 0.1, {"c2w_pred": c2w_own})
    aligned, pose = align_unposed(rec, item.inputs)
    assert pose["pose_rot_deg"] < 1e-3 and pose["pose_trans_err"] < 1e-4
    assert "c2w_pred" not in aligned.info
    assert torch.allclose(aligned.gaussians.means, g.means, atol=1e-4)
    cams: Cameras = item.targets.cameras
    a = render(aligned.gaussians, cams, background=(1.0, 1.0, 1.0)).rgb
    b = render(g, cams, background=(1.0, 1.0, 1.0)).rgb
    assert (a - b).abs().max() < 1e-3
