"""Each pipeline stage alone: typed inputs in, typed result out, and the report built from the results."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from recon.core.errors import ReconError
from recon.inference import Reconstructor
from recon.pipeline.cameras import SINGLE_DISTANCE, requested_mode, solve_cameras
from recon.pipeline.load import load_inputs
from recon.pipeline.options import MaskSource, Mode, ReconstructOptions
from recon.pipeline.predict import predict
from recon.pipeline.refine import refine
from recon.pipeline.result import StageTimes, assemble
from recon.pipeline.write import write_outputs

LEGO_VIEWS = (26, 86, 2)


@pytest.fixture(scope="module")
def model(tiny_checkpoint):
    return Reconstructor.from_pretrained(tiny_checkpoint)


def _photo(path, seed=0, size=(64, 48)):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def test_load_keeps_the_dataset_cameras_and_alpha(eval_data):
    loaded = load_inputs(eval_data / "nerf_synthetic_lego", ReconstructOptions(views=LEGO_VIEWS))
    assert loaded.names == ["r_26.png", "r_86.png", "r_2.png"] and loaded.camera_source.name == "nerf_synthetic_lego"
    assert len(loaded.cameras) == 3 and (loaded.cameras.width, loaded.cameras.height) == (800, 800)
    assert all(im.alpha is not None for im in loaded.images) and loaded.seconds > 0
    with pytest.raises(ReconError, match="views: index 999 out of range"):
        load_inputs(eval_data / "nerf_synthetic_lego", ReconstructOptions(views=(999,)))


def test_posed_solution_is_the_given_cameras_with_alpha_masks_unless_off(eval_data):
    loaded = load_inputs(eval_data / "nerf_synthetic_lego", ReconstructOptions(views=LEGO_VIEWS))
    sol = solve_cameras(loaded, ReconstructOptions(), 32)
    assert sol.mode is Mode.POSED and sol.pose_method == "given" and sol.cameras is loaded.cameras
    assert sol.images.shape == (3, 800, 800, 3) and sol.masks.shape == (3, 800, 800, 1)
    # RGBA over white: a background pixel is white
    assert torch.allclose(sol.images[0, 0, 0], torch.ones(3))
    assert solve_cameras(loaded, ReconstructOptions(mask=MaskSource.NONE), 32).masks is None


def test_single_photo_gets_the_canonical_camera_at_the_working_size(tmp_path):
    loaded = load_inputs([_photo(tmp_path / "a.png")], ReconstructOptions())
    sol = solve_cameras(loaded, ReconstructOptions(), 40)
    assert sol.mode is Mode.SINGLE and sol.pose_method == "canonical" and sol.images.shape == (1, 40, 40, 3)
    assert torch.allclose(sol.cameras.centers[0], torch.tensor([0.0, 0.0, -SINGLE_DISTANCE]))
    assert (sol.cameras.width, sol.cameras.height) == (40, 40)


def test_few_unposed_photos_leave_the_cameras_to_the_model_and_wrong_counts_are_refused(tmp_path):
    paths = [_photo(tmp_path / f"v{i}.png", seed=i) for i in range(3)]
    loaded = load_inputs(paths, ReconstructOptions())
    sol = solve_cameras(loaded, ReconstructOptions(), 32)
    assert sol.mode is Mode.UNPOSED and sol.cameras is None and sol.pose_method == "pointmap"
    assert sol.sfm is None and sol.images.shape == (3, 48, 64, 3)
    with pytest.raises(ReconError, match="single mode takes one image, got 3"):
        requested_mode(loaded, ReconstructOptions(mode="single"))
    one = load_inputs(paths[:1], ReconstructOptions(mode="unposed"))
    with pytest.raises(ReconError, match="unposed mode needs at least 2 images"):
        requested_mode(one, ReconstructOptions(mode="unposed"))


def test_predict_refine_assemble_and_write_compose(eval_data, model, tmp_path):
    opts = ReconstructOptions(views=LEGO_VIEWS[:2], refine_steps=2)
    loaded = load_inputs(eval_data / "nerf_synthetic_lego", opts)
    sol = solve_cameras(loaded, opts, model.cfg.input_long_side)
    pred = predict(sol, model)
    assert pred.views.cameras is sol.cameras and len(pred.gaussians) > 0 and "carved" in pred.info
    assert refine(pred, model.cfg, 0).gaussians is pred.gaussians and refine(pred, model.cfg, 0).info is None
    ref = refine(pred, model.cfg, opts.refine_steps)
    assert ref.info["steps"] == 2 and len(ref.gaussians) == len(pred.gaussians)
    res = assemble(opts, loaded, sol, pred, ref, model, StageTimes(model_load=0.0, total=1.0))
    rep = res.report
    assert rep["mode"] == "posed" and rep["views"] == 2 and rep["gaussians"] == len(res.gaussians)
    assert rep["refine"] == ref.info and rep["carved"] == pred.info["carved"]
    assert set(rep["timings"]) == {"load", "model_load", "preprocess", "predict", "refine", "total_before_export"}
    before = repr(rep)
    written = write_outputs(res, tmp_path / "out", ("ply",))
    assert repr(res.report) == before  # writing never changes the result's report
    assert written.report["outputs"] == ["gaussians.ply", "cameras.json", "report.json"]
    assert [p.name for p in written.files] == written.report["outputs"]
    with pytest.raises(ReconError, match="unknown export format"):
        write_outputs(res, tmp_path / "bad", ("fbx",))
    assert not (tmp_path / "bad").exists()


def test_refine_limits_combine_steps_and_seconds():
    assert ReconstructOptions().refine_limits() == (0, None)  # no refinement
    assert ReconstructOptions(refine_steps=50).refine_limits() == (50, None)  # reproducible step count
    assert ReconstructOptions(refine_seconds=15).refine_limits() == (None, 15.0)  # the budget decides
    assert ReconstructOptions(refine_steps=50, refine_seconds=15).refine_limits() == (50, 15.0)
    for bad in (float("nan"), float("inf"), -1.0, "fast"):
        with pytest.raises(ReconError, match="refine_seconds must be a finite number >= 0"):
            ReconstructOptions(refine_seconds=bad)
