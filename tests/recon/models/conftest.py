"""Model tests run single-threaded on small tensors (threads cost more than they give on a shared
CPU), restoring the setting afterwards; ``tiny_model`` is a seeded untrained ``preset("tiny")``."""

from __future__ import annotations

import pytest
import torch

from recon.models import ReconModel, preset


@pytest.fixture(autouse=True)
def _single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny_model() -> ReconModel:
    torch.manual_seed(0)
    return ReconModel(preset("tiny")).eval()
