"""Shared pytest configuration: the ``cuda`` marker skips cleanly on machines without a GPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

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
