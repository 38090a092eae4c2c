"""Pipeline tests: a seeded untrained ``tiny`` checkpoint folder, written once per session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from recon.models import ReconModel, preset
from recon.reconstructor import WEIGHTS_NAME, sha256_file


def write_checkpoint(folder: Path, model: ReconModel) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / WEIGHTS_NAME))
    cfg = {"model": model.cfg.to_dict(), "weights": {"file": WEIGHTS_NAME, "sha256": sha256_file(folder / WEIGHTS_NAME)}}
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", ReconModel(preset("tiny")))


@pytest.fixture(scope="session")
def opaque_checkpoint(tmp_path_factory) -> Path:
    """The tiny model with opaque Gaussians (untrained heads give opacity sigmoid(0) = 0.5, and mesh
    extraction fuses only Gaussians above 0.5, like a trained model's surface)."""
    torch.manual_seed(0)
    cfg = preset("tiny")
    cfg.adapter.opacity_bias = 2.0
    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny_opaque", ReconModel(cfg))
