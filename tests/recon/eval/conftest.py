"""Eval tests work on small images, where intra-op threads cost more than they give (and stall badly
on a shared, oversubscribed CPU): run them single-threaded, restoring the setting afterwards."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
