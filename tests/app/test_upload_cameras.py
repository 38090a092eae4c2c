"""The app's camera upload (issue 23, defect 1): Blender's lego ``transforms_train.json`` uploaded with four
of its PNGs is used, each photo getting its own frame's camera (the file names ``./train/r_26``, stores no
``w``/``h``, and is staged apart from the photos)."""

from __future__ import annotations

import torch

from app.uploads import UploadLimits, stage_uploads
from recon.io import read_cameras
from recon.pipeline.load import load_inputs
from recon.pipeline.options import ReconstructOptions


def test_lego_camera_file_uploaded_with_four_photos(eval_data, tmp_path):
    lego = eval_data / "nerf_synthetic_lego"
    photos = [str(lego / "train" / f"r_{i}.png") for i in (86, 2, 55, 26)]
    staged = stage_uploads(photos, str(lego / "transforms_train.json"), tmp_path / "session", UploadLimits())
    loaded = load_inputs(staged.images, ReconstructOptions(cameras=staged.cameras, device="cpu"))
    assert loaded.names == ["r_2.png", "r_26.png", "r_55.png", "r_86.png"] and not loaded.warnings
    want = read_cameras(lego, views=loaded.names).cameras
    assert torch.allclose(loaded.cameras.c2w, want.c2w) and torch.allclose(loaded.cameras.K, want.K)
