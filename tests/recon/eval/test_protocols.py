"""Protocol definitions: names, fixed views, sizes, cameras, preprocessing, generated docs."""

from __future__ import annotations

import json

import pytest
import torch

from recon.core.errors import ReconError
from recon.eval.protocol_base import ProtocolOverrides
from recon.eval.protocols import (
    DOCS_PATH,
    get_protocol,
    get_protocols,
    protocol_names,
    protocols_markdown,
)
from recon.eval.protocols_real import (
    FOX_INPUTS,
    FOX_SHARPNESS_MIN,
    FOX_TARGETS,
    LEGO_TARGETS,
    undistorted_fraction,
)
from recon.eval.protocols_synthetic import (
    OBJECT_COUNT,
    SCENE_COUNT,
    TRAIN_SEED_LIMIT,
    SyntheticVal,
)
from recon.eval.view_selection import split_inputs_targets
from recon.io import read_cameras


def test_names_aliases_and_unknown():
    assert protocol_names() == ["lego-sparse-4", "lego-sparse-8", "fox-sparse", "dtu-3", "dtu-6", "llff-3",
                                "synthetic-val", "synthetic-val-scenes", "lego-sparse", "dtu"]
    assert [p.name for p in get_protocols("lego-sparse")] == ["lego-sparse-4", "lego-sparse-8"]
    assert [p.name for p in get_protocols("dtu")] == ["dtu-3", "dtu-6"]
    with pytest.raises(ReconError, match="unknown protocol 'nope'; known protocols: lego-sparse-4") as e:
        get_protocols("nope")
    assert "\n" not in str(e.value)
    with pytest.raises(ReconError, match="names 2 protocols"):
        get_protocol("lego-sparse")


def test_missing_data_folder_is_one_line_error(tmp_path):
    p = get_protocol("fox-sparse", data_dir=tmp_path)
    with pytest.raises(ReconError, match="data folder .*fox_instantngp not found") as e:
        next(p.items())
    assert "\n" not in str(e.value)


def test_lego_definition_and_views(eval_data):
    p4 = get_protocol("lego-sparse-4", eval_data)
    d = p4.definition()
    assert d["inputs"] == ["r_26", "r_86", "r_2", "r_55"] and d["size"] == [400, 400]
    assert d["targets"] == list(LEGO_TARGETS) and len(LEGO_TARGETS) == 8 and d["background"] == [1.0, 1.0, 1.0]
    assert get_protocol("lego-sparse-8").definition()["inputs"] == ["r_26", "r_86", "r_2", "r_55", "r_75", "r_93", "r_16", "r_73"]
    (item_id, inputs, targets, extras), = list(p4.items())
    assert item_id == "lego" and extras == {}
    assert inputs.names == ["train/r_26.png", "train/r_86.png", "train/r_2.png", "train/r_55.png"]
    assert targets.names == [f"test/{n}.png" for n in LEGO_TARGETS]
    assert inputs.images.shape == (4, 400, 400, 3) and targets.images.shape == (8, 400, 400, 3)
    assert inputs.masks.shape == (4, 400, 400, 1) and inputs.depth_z is None
    # Selected by name: camera 0 is the pose of r_26 in the file; K scaled 800 -> 400 exactly.
    full = read_cameras(eval_data / "nerf_synthetic_lego" / "transforms_train.json", views=["r_26"]).cameras
    torch.testing.assert_close(inputs.cameras.c2w[0], full.c2w[0])
    torch.testing.assert_close(inputs.cameras.K[0], torch.tensor([[full.K[0, 0, 0] / 2, 0, 200], [0, full.K[0, 1, 1] / 2, 200], [0, 0, 1]]))
    # Composited over white (alpha 0 at the corner), and the mask is the alpha.
    torch.testing.assert_close(inputs.images[0, 0, 0], torch.ones(3))
    assert float(inputs.masks[0, 0, 0]) == 0.0 and 0.05 < float(inputs.masks.mean()) < 0.6


def test_fox_definition_views_and_undistortion(eval_data):
    p = get_protocol("fox-sparse", eval_data)
    d = p.definition()
    assert len(FOX_INPUTS) == 8 and len(FOX_TARGETS) == 10 and set(FOX_INPUTS).isdisjoint(FOX_TARGETS)
    assert d["size"] == [540, 960] and d["background"] == [0.0, 0.0, 0.0] and d["masks_to_method"] is False
    views = p.load_views(FOX_INPUTS[:1])  # one photo at the full protocol size (decoded once per process)
    assert views.images.shape == (1, 960, 540, 3) and views.masks is None and views.names == [FOX_INPUTS[0]]
    cams = views.cameras
    assert (cams.width, cams.height) == (540, 960)
    data = json.loads((eval_data / "fox_instantngp" / "transforms.json").read_text())
    expected_K = torch.tensor([[data["fl_x"] / 2, 0, data["cx"] / 2], [0, data["fl_y"] / 2, data["cy"] / 2], [0, 0, 1]])
    torch.testing.assert_close(cams.K[0], expected_K)
    assert 0.97 < undistorted_fraction(p, FOX_INPUTS[0]) < 1.0  # a thin border only


def test_fox_views_reproduce_from_the_selection_rule(eval_data):
    path = eval_data / "fox_instantngp" / "transforms.json"
    frames = json.loads(path.read_text())["frames"]
    allowed = [i for i, f in enumerate(frames) if f["sharpness"] >= FOX_SHARPNESS_MIN]
    cams = read_cameras(path)
    inputs, targets = split_inputs_targets(cams.cameras, 8, 10, allowed)
    assert tuple(cams.names[i] for i in inputs) == FOX_INPUTS
    assert tuple(cams.names[i] for i in targets) == FOX_TARGETS


def test_synthetic_definitions_and_seeds():
    objects, scenes = SyntheticVal(False), SyntheticVal(True)
    assert (objects.name, objects.num_items(), scenes.name, scenes.num_items()) == (
        "synthetic-val", OBJECT_COUNT, "synthetic-val-scenes", SCENE_COUNT)
    assert OBJECT_COUNT == 200 and SCENE_COUNT == 50
    so, ss = objects.seeds(), scenes.seeds()
    assert len(set(so)) == 200 and min(so) >= TRAIN_SEED_LIMIT and set(so).isdisjoint(ss) and min(ss) >= TRAIN_SEED_LIMIT
    assert objects.definition()["size"] == [256, 256] and objects.background == (1.0, 1.0, 1.0)
    assert scenes.background == (0.0, 0.0, 0.0) and scenes.definition()["masks_to_method"] is False
    assert objects.metrics.depth and objects.metrics.mesh and objects.metrics.fscore_tau_rel == 0.01


def test_overrides_are_validated_and_scale_sizes():
    p = get_protocol("fox-sparse", overrides=ProtocolOverrides(limit=1, size_scale=0.25))
    assert p.definition()["size"] == [135, 240] and p.overrides.active
    assert not ProtocolOverrides().active
    with pytest.raises(ReconError):
        ProtocolOverrides(limit=0)
    with pytest.raises(ReconError):
        ProtocolOverrides(size_scale=2.0)


def test_docs_are_generated_from_the_code():
    text = protocols_markdown()
    for name in protocol_names():
        assert f"`{name}`" in text
    assert DOCS_PATH.read_text() == text, "docs/protocols.md is stale: run `python -m recon.eval.protocols`"
