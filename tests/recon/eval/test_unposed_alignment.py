"""Unposed methods are scored after a similarity alignment of their cameras to the protocol's."""

from __future__ import annotations

import math

import pytest
import torch

from recon.core.types import Reconstruction
from recon.data.procedural.item import make_item
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


def test_pose_metrics_separate_unsolved_cameras():
    from recon.eval.runner import pose_metrics

    rot = torch.tensor([0.0, 5.0, 20.0, 90.0, 3.0])  # camera 0 is the reference and never counts
    tr = torch.tensor([0.0, 0.1, 0.2, 0.3, 0.4])
    m = pose_metrics(rot, tr, [True, True, True, False, True])
    assert m["pose_rot_deg"] == pytest.approx((5 + 20 + 90 + 3) / 4)
    assert m["pose_trans_err"] == pytest.approx(0.25)
    assert m["pose_solved"] == 0.75
    assert m["pose_rot_deg_solved"] == pytest.approx((5 + 20 + 3) / 3)
    assert m["pose_trans_err_solved"] == pytest.approx((0.1 + 0.2 + 0.4) / 3)
    assert m["pose_acc15"] == 0.5  # 5 and 3 deg; 20 is too far, and the 90 deg camera was not solved
    # an unsolved camera does not count as accurate even when its (identity) guess happens to be close
    assert pose_metrics(rot, tr, [True, False, False, False, False])["pose_acc15"] == 0.0
    nothing = pose_metrics(rot, tr, [True, False, False, False, False])
    assert nothing["pose_rot_deg_solved"] is None and nothing["pose_solved"] == 0.0
    # a method that does not say which it solved: all count as solved
    assert pose_metrics(rot, tr)["pose_solved"] == 1.0
