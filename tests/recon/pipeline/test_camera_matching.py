"""Images matched to the cameras of a camera file (issue 23, defects 1 and 4): by file name, else by
stem whatever folder the file stores; sizes from the images when the file has none; a refusal naming
the images without cameras instead of a guess by file order. No model runs here."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from recon.core.errors import ReconError
from recon.io import read_cameras, write_cameras_json
from recon.io.camera_set import did_you_mean, image_key
from recon.pipeline.load import load_inputs
from recon.pipeline.options import ReconstructOptions
from renderer import Cameras

EXAMPLES = Path(__file__).resolve().parents[3] / "assets" / "examples"
W, H = 64, 48


def _png(path: Path, seed: int, size=(W, H)) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def _c2w_gl(i: int) -> list[list[float]]:
    """A camera on a circle of radius 4 looking at the origin (OpenGL axes), distinct per ``i``."""
    a = 2 * math.pi * i / 7
    eye = np.array([4 * math.cos(a), 4 * math.sin(a), 1.0])
    back = eye / np.linalg.norm(eye)  # OpenGL: the camera looks down -z, so +z points back
    right = np.cross([0.0, 0.0, 1.0], back)
    right /= np.linalg.norm(right)
    up = np.cross(back, right)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, up, back, eye
    return m.tolist()


def _nerf_file(folder: Path, stems_and_ids: list[tuple[str, int]], size: bool) -> Path:
    """A transforms.json naming ``./train/<stem>`` (no extension, as Blender's lego does), apart from its images."""
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"camera_angle_x": 0.69, "frames": [{"file_path": f"./train/{s}", "transform_matrix": _c2w_gl(i)}
                                              for s, i in stems_and_ids]}
    if size:
        doc.update(w=W, h=H)
    path = folder / "transforms_train.json"
    path.write_text(json.dumps(doc))
    return path


def _images(folder: Path, stems: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for k, s in enumerate(stems):
        _png(folder / f"{s}.png", k)
    return folder


def _opts(cameras: Path | None = None, **kw) -> ReconstructOptions:
    return ReconstructOptions(cameras=cameras, device="cpu", **kw)


def _camera_of(c2w: torch.Tensor, i: int) -> bool:
    want = torch.tensor(_c2w_gl(i), dtype=torch.float64) @ torch.diag(torch.tensor([1.0, -1, -1, 1], dtype=torch.float64))
    return torch.allclose(c2w.double(), want, atol=1e-5)


# ---- defect 1: a NeRF transforms.json given as a separate camera file ----------------------------


def test_nerf_file_apart_from_its_images_takes_the_size_from_the_images(tmp_path):
    """No w/h in the file and no train/ beside it: the size comes from the images being loaded."""
    cam = _nerf_file(tmp_path / "cam", [(f"r_{i}", i) for i in range(5)], size=False)
    imgs = _images(tmp_path / "l4", [f"r_{i}" for i in range(4)])
    loaded = load_inputs([imgs], _opts(cam))
    assert (loaded.cameras.width, loaded.cameras.height) == (W, H)
    f = 0.5 * W / math.tan(0.5 * 0.69)  # the field of view across the images' own width
    assert torch.allclose(loaded.cameras.K[:, 0, 0], torch.full((4,), f), rtol=1e-5)
    assert loaded.names == [f"r_{i}.png" for i in range(4)] and not loaded.warnings


def test_frames_match_images_by_stem_whatever_the_folder_and_order(tmp_path):
    """``./train/r_3`` is ``r_3.png``: each image gets its own frame's camera, not the one at its position."""
    cam = _nerf_file(tmp_path / "cam", [("r_3", 3), ("r_2", 2), ("r_1", 1), ("r_0", 0)], size=True)
    imgs = _images(tmp_path / "l4", [f"r_{i}" for i in range(4)])
    loaded = load_inputs([imgs], _opts(cam))
    assert all(_camera_of(loaded.cameras.c2w[k], k) for k in range(4))
    assert loaded.warnings == []


def test_names_that_do_not_match_are_refused_naming_the_images(tmp_path):
    cam = _nerf_file(tmp_path / "cam", [(f"other_{i}", i) for i in range(4)], size=True)
    imgs = _images(tmp_path / "l4", [f"r_{i}" for i in range(4)])
    with pytest.raises(ReconError, match=r"no camera for 4 of 4 image\(s\): r_0.png, r_1.png") as info:
        load_inputs([imgs], _opts(cam))
    assert "\n" not in str(info.value)


def test_a_file_that_names_no_images_is_taken_in_file_order_with_a_warning(tmp_path):
    cams = Cameras(torch.stack([torch.eye(4)] * 3), torch.tensor([[50.0, 0, W / 2], [0, 50, H / 2], [0, 0, 1]]).expand(3, 3, 3),
                   W, H)
    cams.c2w[:, 0, 3] = torch.arange(3.0)
    path = write_cameras_json(tmp_path / "cams.json", cams)  # names view_000, view_001, ...: placeholders
    imgs = _images(tmp_path / "imgs", ["a", "b", "c"])
    loaded = load_inputs([imgs], _opts(path))
    assert loaded.cameras.c2w[:, 0, 3].tolist() == [0.0, 1.0, 2.0]
    assert any("file order" in w for w in loaded.warnings)
    _png(imgs / "d.png", 9)
    with pytest.raises(ReconError, match="3 cameras for 4 images"):
        load_inputs([imgs], _opts(path))


def test_lego_camera_file_apart_from_four_of_its_images(eval_data, tmp_path):
    """The issue's repro: 4 lego PNGs in one folder, transforms_train.json in another."""
    lego = eval_data / "nerf_synthetic_lego"
    (tmp_path / "l4").mkdir()
    (tmp_path / "cam").mkdir()
    for i in (26, 2, 55, 86):
        shutil.copy(lego / "train" / f"r_{i}.png", tmp_path / "l4")
    shutil.copy(lego / "transforms_train.json", tmp_path / "cam")
    loaded = load_inputs([tmp_path / "l4"], _opts(tmp_path / "cam" / "transforms_train.json"))
    want = read_cameras(lego, views=loaded.names)
    assert torch.allclose(loaded.cameras.c2w, want.cameras.c2w) and torch.allclose(loaded.cameras.K, want.cameras.K)
    assert not loaded.warnings


# ---- defect 4: camera-count mismatches ------------------------------------------------------------


def test_more_images_than_cameras_names_the_images_without_cameras(tmp_path):
    cam = _nerf_file(tmp_path / "cam", [(f"r_{i}", i) for i in range(4)], size=True)
    imgs = _images(tmp_path / "l5", [f"r_{i}" for i in range(5)])
    with pytest.raises(ReconError, match=r"no camera for 1 of 5 image\(s\): r_4.png"):
        load_inputs([imgs], _opts(cam))


def test_more_cameras_than_images_uses_the_matched_subset(tmp_path):
    cam = _nerf_file(tmp_path / "cam", [(f"r_{i}", i) for i in range(6)], size=True)
    imgs = _images(tmp_path / "l2", ["r_4", "r_1"])
    loaded = load_inputs([imgs], _opts(cam))
    assert loaded.names == ["r_1.png", "r_4.png"]
    assert _camera_of(loaded.cameras.c2w[0], 1) and _camera_of(loaded.cameras.c2w[1], 4)


@pytest.mark.parametrize("keep", [4, 2])
def test_dataset_folder_with_images_that_have_no_camera_is_refused(tmp_path, keep):
    """toy_posed plus a 5th image (4 cameras for 5), or its cameras.json cut to 2 frames (2 for 4)."""
    folder = shutil.copytree(EXAMPLES / "toy_posed", tmp_path / "ds")
    if keep == 4:
        shutil.copy(folder / "view_00.png", folder / "view_04.png")
        missing = "view_04.png"
    else:
        doc = json.loads((folder / "cameras.json").read_text())
        doc["frames"] = doc["frames"][:2]
        (folder / "cameras.json").write_text(json.dumps(doc))
        missing = "view_02.png, view_03.png"
    with pytest.raises(ReconError, match=f"no camera for {5 - keep if keep == 4 else 2} image.*{missing}"):
        load_inputs([folder], _opts())
    picked = load_inputs([folder], _opts(views=(0, 1)))  # picking views with cameras is fine
    assert picked.names == ["view_00.png", "view_01.png"]


def test_two_images_for_one_frame_are_refused(tmp_path):
    cam = _nerf_file(tmp_path / "cam", [("r_0", 0), ("r_1", 1)], size=True)
    a = _png(tmp_path / "r_0.png", 0)
    b = _png(tmp_path / "r_0.jpg", 1)
    with pytest.raises(ReconError, match="both match frame 0"):
        load_inputs([a, b], _opts(cam))


# ---- defect 11: a view name without its extension -----------------------------------------------


def test_a_view_name_without_extension_gets_a_hint(tmp_path):
    imgs = _images(tmp_path / "imgs", ["r_26", "r_27"])
    with pytest.raises(ReconError, match=r"no input named 'r_26' \(did you mean 'r_26.png'\?\)"):
        load_inputs([imgs], _opts(views=("r_26",)))
    with pytest.raises(ReconError, match=r"did you mean 'view_01.png'"):
        load_inputs([EXAMPLES / "toy_posed"], _opts(views=("view_01",)))


def test_image_keys_and_hints():
    assert image_key("./train/r_26") == image_key("r_26.png") == image_key("r_26.PNG") == "r_26"
    assert image_key("frame.0001") == "frame.0001" and image_key("frame.0001.jpg") == "frame.0001"
    assert image_key("a\\b\\c.jpeg") == "c"
    assert did_you_mean("r_26", ["r_25.png", "r_26.png"]) == " (did you mean 'r_26.png'?)"
    assert did_you_mean("zzz", ["r_25.png"]) == ""
