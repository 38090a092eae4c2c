"""``Reconstructor.from_pretrained``: safetensors + config.json with a sha256, strict key checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from recon.core.errors import ReconError
from recon.data.procedural.item import make_item
from recon.inference import Reconstructor
from recon.models import ReconModel
from recon.models.checkpoint import WEIGHTS_NAME, sha256_file


def _write(folder: Path, model: ReconModel, state: dict | None = None, sha: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in (state if state is not None else model.state_dict()).items()}
    save_file(state, str(folder / WEIGHTS_NAME))
    cfg = {"model": model.cfg.to_dict(), "weights": {"file": WEIGHTS_NAME, "sha256": sha or sha256_file(folder / WEIGHTS_NAME)}}
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


def test_round_trip(tmp_path, tiny_model):
    folder = _write(tmp_path / "ckpt", tiny_model)
    rec = Reconstructor.from_pretrained(folder, dtype=torch.float32)
    assert rec.cfg == tiny_model.cfg
    loaded = rec.model.state_dict()
    for k, v in tiny_model.state_dict().items():
        assert torch.equal(loaded[k], v), k
    assert rec.info["sha256"] == sha256_file(folder / WEIGHTS_NAME)
    views = make_item(2, n_inputs=2, n_targets=0, size=32).inputs
    a = Reconstructor(tiny_model, dtype=torch.float32).reconstruct(views).gaussians
    b = rec.reconstruct(views).gaussians
    assert torch.equal(a.means, b.means) and torch.equal(a.sh, b.sh)


def test_wrong_sha256_names_the_file(tmp_path, tiny_model):
    folder = _write(tmp_path / "ckpt", tiny_model, sha="0" * 64)
    with pytest.raises(ReconError, match=r"model\.safetensors.*sha256"):
        Reconstructor.from_pretrained(folder)


def test_missing_and_unexpected_keys_are_reported(tmp_path, tiny_model):
    state = dict(tiny_model.state_dict())
    gone = "backbone.blocks.0.attn.q.weight"
    del state[gone]
    state["backbone.extra.weight"] = torch.zeros(2, 3)
    state["backbone.norm.weight"] = torch.zeros(7)  # wrong shape
    folder = _write(tmp_path / "ckpt", tiny_model, state)
    with pytest.raises(ReconError) as err:
        Reconstructor.from_pretrained(folder)
    msg = str(err.value)
    assert "\n" not in msg and WEIGHTS_NAME in msg
    assert f"missing: {gone} (32, 32)" in msg
    assert "unexpected: backbone.extra.weight (2, 3)" in msg
    assert "shape: backbone.norm.weight checkpoint (7,) vs model (32,)" in msg


def test_not_a_checkpoint_folder(tmp_path, tiny_model):
    with pytest.raises(ReconError, match="no config.json"):
        Reconstructor.from_pretrained(tmp_path)
    folder = _write(tmp_path / "ckpt", tiny_model)
    (folder / WEIGHTS_NAME).unlink()
    with pytest.raises(ReconError, match="missing"):
        Reconstructor.from_pretrained(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ReconError, match="malformed"):
        Reconstructor.from_pretrained(folder)


def test_inference_scale_gain_multiplies_every_scale(tmp_path, tiny_model):
    """``config.json``'s ``inference.scale_gain`` (a calibration, not weights) scales every predicted
    Gaussian, posed and unposed, and nothing else; a bad value is a one-line error naming the file."""
    folder = _write(tmp_path / "ckpt", tiny_model)
    cfg = json.loads((folder / "config.json").read_text())
    views = make_item(2, n_inputs=2, n_targets=0, size=32).inputs
    plain = Reconstructor.from_pretrained(folder, dtype=torch.float32, min_opacity=0.0)
    assert plain.scale_gain == 1.0
    (folder / "config.json").write_text(json.dumps({**cfg, "inference": {"scale_gain": 2.5}}))
    gained = Reconstructor.from_pretrained(folder, dtype=torch.float32, min_opacity=0.0)
    assert gained.scale_gain == 2.5 and gained.info["scale_gain"] == 2.5
    a, b = plain.reconstruct(views).gaussians, gained.reconstruct(views).gaussians
    assert torch.allclose(b.scales, 2.5 * a.scales, rtol=1e-6) and torch.equal(a.means, b.means)
    assert torch.equal(a.opacities, b.opacities) and torch.equal(a.sh, b.sh)
    ua, ub = plain.predict_unposed(views.images).gaussians, gained.predict_unposed(views.images).gaussians
    assert torch.allclose(ub.scales, 2.5 * ua.scales, rtol=1e-6)
    # an explicit argument wins over the file
    assert Reconstructor.from_pretrained(folder, scale_gain=1.0).scale_gain == 1.0
    for bad in (0, -1, "2", None, True):
        (folder / "config.json").write_text(json.dumps({**cfg, "inference": {"scale_gain": bad}}))
        with pytest.raises(ReconError, match=r"config\.json: scale_gain must be a positive number") as err:
            Reconstructor.from_pretrained(folder)
        assert "\n" not in str(err.value)
