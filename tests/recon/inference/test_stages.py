"""The inference functions alone (posed, unposed, mesh) and the ``Reconstructor`` that holds their
model, device, dtype and settings: each method gives exactly what its function gives."""

from __future__ import annotations

import pytest
import torch

from recon.core.errors import ReconError
from recon.data.procedural.item import make_item
from recon.inference import InferenceSettings, Reconstructor
from recon.inference.mesh import mesh_from_views
from recon.inference.posed import predict_posed, reconstruct_posed
from recon.inference.unposed import check_images, predict_unposed, reconstruct_unposed

CPU, F32 = torch.device("cpu"), torch.float32


@pytest.fixture(scope="module")
def views():
    return make_item(3, n_inputs=3, n_targets=0, size=32).inputs


def test_posed_functions_match_the_reconstructor(tiny_model, views):
    settings = InferenceSettings(min_opacity=0.0, scale_gain=1.5)
    rec = Reconstructor(tiny_model, dtype=F32, min_opacity=0.0, scale_gain=1.5, info={"checkpoint": "x"})
    pred = predict_posed(tiny_model, views, settings, CPU, F32)
    pg, frame, cams = rec.predict(views)
    assert torch.equal(pred.gaussians.means, pg.means) and torch.equal(pred.gaussians.opacities, pg.opacities)
    assert torch.equal(pred.cameras.K, cams.K) and pred.frame.to_dict() == frame.to_dict()
    assert pred.carved > 0  # the item has masks, so carving is on by default
    a = reconstruct_posed(tiny_model, views, settings, CPU, F32, {"checkpoint": "x"})
    b = rec.reconstruct(views)
    assert torch.equal(a.gaussians.means, b.gaussians.means)
    assert list(a.info) == ["gaussians", "carve_votes", "carved", "frame", "checkpoint"]
    assert a.info == b.info


def test_unposed_functions_match_the_reconstructor(tiny_model, views):
    settings = InferenceSettings()
    rec = Reconstructor(tiny_model, dtype=F32)
    a = predict_unposed(tiny_model, views.images, views.masks, settings, CPU, F32)
    b = rec.predict_unposed(views.images, views.masks)
    assert torch.equal(a.gaussians.means, b.gaussians.means) and torch.equal(a.cameras.c2w, b.cameras.c2w)
    assert torch.equal(a.cameras.c2w[0], torch.eye(4))  # world = the first camera's frame
    (ra, ca), (rb, cb) = (reconstruct_unposed(tiny_model, views.images, None, settings, CPU, F32),
                          rec.reconstruct_unposed(views.images))
    assert torch.equal(ra.gaussians.means, rb.gaussians.means) and torch.equal(ca.K, cb.K)
    assert (ca.width, ca.height) == (32, 32) and ra.info["world"] == "first camera"


def test_mesh_function_matches_the_reconstructor(tiny_model, views):
    a = mesh_from_views(tiny_model, views, CPU, F32, resolution=16)
    b = Reconstructor(tiny_model, dtype=F32).mesh(views, resolution=16)
    assert torch.equal(a.vertices, b.vertices) and torch.equal(a.faces, b.faces)


def test_settings_and_input_checks():
    s = InferenceSettings(scale_gain=2, carve_threshold=1)
    assert isinstance(s.scale_gain, float) and isinstance(s.carve_threshold, float)
    for bad in (0, -1.0, float("nan"), True, "1"):
        with pytest.raises(ReconError, match="scale_gain must be a positive number"):
            InferenceSettings(scale_gain=bad)
    with pytest.raises(ReconError, match="unposed input must be images"):
        check_images(torch.zeros(2, 8, 8))
    with pytest.raises(ReconError, match="do not match images"):
        check_images(torch.zeros(2, 8, 8, 3), torch.zeros(1, 8, 8))
