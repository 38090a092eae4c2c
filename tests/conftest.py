"""Shared pytest configuration: the ``cuda`` marker skips cleanly on machines without a GPU; the eval
data folder; seeded untrained ``tiny`` checkpoint folders, written once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from recon.models import ReconModel, preset
from recon.models.checkpoint import write_checkpoint

EVAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "eval_data"


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def eval_data() -> Path:
    if not EVAL_DATA.is_dir():
        pytest.skip(f"eval data not found at {EVAL_DATA}")
    return EVAL_DATA


def _write(folder: Path, model: ReconModel) -> Path:
    return write_checkpoint(folder, model.cfg, model.state_dict())


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return _write(tmp_path_factory.mktemp("ckpt") / "tiny", ReconModel(preset("tiny")))


@pytest.fixture(scope="session")
def opaque_checkpoint(tmp_path_factory) -> Path:
    """The tiny model with opaque Gaussians (untrained heads give opacity sigmoid(0) = 0.5, and mesh
    extraction fuses only Gaussians above 0.5, like a trained model's surface)."""
    torch.manual_seed(0)
    cfg = preset("tiny")
    cfg.adapter.opacity_bias = 2.0
    return _write(tmp_path_factory.mktemp("ckpt") / "tiny_opaque", ReconModel(cfg))
