"""DTU and LLFF protocols: the literal view lists follow the stated rules on the data, items load at
the protocol sizes with exact cameras, and the DTU target masks are binary object masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recon.eval.protocols import get_protocol
from recon.eval.protocols_captures import DTU_INPUTS_3, DTU_INPUTS_6, DTU_TARGETS, LLFF_SCENES
from recon.io.idr import read_idr
from recon.io.llff import read_llff


@pytest.mark.parametrize("scene, folder, size, inputs, targets", LLFF_SCENES)
def test_llff_views_follow_the_rule(eval_data, scene, folder, size, inputs, targets):
    names = read_llff(eval_data / scene, images=folder).names
    rest = [n for i, n in enumerate(names) if i % 8]
    assert list(targets) == names[::8]
    assert list(inputs) == [rest[int(i)] for i in np.linspace(0, len(rest) - 1, 3).round()]


def test_dtu_views_are_the_literature_split():
    assert DTU_INPUTS_3 == (25, 22, 28) and DTU_INPUTS_6 == (25, 22, 28, 40, 44, 48)
    assert not set(DTU_TARGETS) & set(DTU_INPUTS_6)


def test_dtu_items_load_at_a_quarter_size_with_binary_target_masks(eval_data):
    p = get_protocol("dtu-3", eval_data)
    items = list(p.items())
    assert [it.item_id for it in items] == ["scan24", "scan37"]
    full = read_idr(eval_data / "dtu_scan24" / "cameras_sphere.npz", width=1600, height=1200, image_folder=False)
    it = items[0]
    assert it.inputs.images.shape == (3, 300, 400, 3) and it.inputs.masks is None  # methods get no masks
    assert torch.allclose(it.inputs.cameras.K, full.cameras[list(DTU_INPUTS_3)].K / 4 * torch.tensor(
        [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [0.0, 0.0, 4.0]]), atol=1e-3)
    masks = it.targets.masks
    assert masks.shape == (6, 300, 400, 1) and set(masks.unique().tolist()) == {0.0, 1.0}
    assert 0.2 < float(masks.mean()) < 0.9  # the object fills part of the frame, not all of it
    assert p.metrics.psnr_foreground


def test_llff_items_load_at_the_protocol_sizes(eval_data):
    items = list(get_protocol("llff-3", eval_data).items())
    assert [it.item_id for it in items] == ["horns", "room", "flower"]
    for it, (_, _, size, inputs, targets) in zip(items, LLFF_SCENES):
        assert (it.inputs.cameras.width, it.inputs.cameras.height) == size and len(it.inputs) == len(inputs) == 3
        assert it.targets.images.shape == (len(targets), size[1], size[0], 3) and it.targets.masks is None
