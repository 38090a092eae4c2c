"""App tests: a seeded untrained ``tiny`` checkpoint and the loaded model, once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from recon.models import ReconModel, preset
from recon.models.checkpoint import write_checkpoint

EXAMPLES = Path(__file__).resolve().parents[2] / "assets" / "examples"


@pytest.fixture(scope="session")
def app_checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    cfg = preset("tiny")
    # Untrained heads start at opacity sigmoid(0) = 0.5; a bias makes the Gaussians opaque, like a
    # trained model's, so that mesh export finds a surface (it fuses the opaque Gaussians).
    cfg.adapter.opacity_bias = 2.0
    return write_checkpoint(tmp_path_factory.mktemp("app_ckpt") / "tiny", cfg, ReconModel(cfg).state_dict())


@pytest.fixture(scope="session")
def reconstructor(app_checkpoint):
    from recon.inference import Reconstructor

    return Reconstructor.from_pretrained(app_checkpoint)


@pytest.fixture
def config(tmp_path):
    from app.callbacks import AppConfig

    return AppConfig(work_root=tmp_path / "work", turntable_frames=4, turntable_size=64)


@pytest.fixture
def posed_example() -> tuple[list[str], str]:
    folder = EXAMPLES / "toy_posed"
    return sorted(str(p) for p in folder.glob("*.png")), str(folder / "cameras.json")
