"""Structure from motion (recon.pipeline.sfm): pose conversion, the auto decision, and lego.

Fast tests build pycolmap reconstructions synthetically (known poses, no images) and check that
our OpenCV c2w and K project points to the pixels COLMAP projects them to. The slow tests run
the whole SfM on views of the Blender lego read by path from ../shared/eval_data.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from recon.core.errors import ReconError
from recon.core.geometry import camera_errors
from recon.io import read_cameras, read_nerf
from recon.io.images import load_image, resize_image
from recon.pipeline.sfm import (
    SfmOptions,
    SfmResult,
    choose_pose_method,
    estimate_cameras_sfm,
    result_from_reconstruction,
    sfm_confidence,
)
from renderer.cameras import Cameras

pycolmap = pytest.importorskip("pycolmap")

EVAL_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "eval_data"
LEGO = EVAL_DATA / "nerf_synthetic_lego" / "transforms_train.json"
LEGO_SIZE = 400  # px: SfM on 800 px lego is about 5x slower and registers no more views


def synthetic_reconstruction(n_frames: int = 4):
    """A noise-free pycolmap reconstruction: one PINHOLE camera, n posed images, 3D points."""
    o = pycolmap.SyntheticDatasetOptions()
    o.num_rigs = 1
    o.num_cameras_per_rig = 1
    o.num_frames_per_rig = n_frames
    o.num_points3D = 60
    o.camera_model_id = pycolmap.CameraModelId.PINHOLE
    o.camera_width, o.camera_height = 640, 400
    o.camera_params = [600.0, 620.0, 310.0, 205.0]
    o.sensor_from_rig_translation_stddev = 0.0
    o.sensor_from_rig_rotation_stddev = 0.0
    return pycolmap.synthesize_dataset(o)


def sorted_images(rec):
    return sorted(rec.images.values(), key=lambda im: im.name)


# ---- pose conversion ------------------------------------------------------------------------


def test_conversion_projects_like_colmap():
    rec = synthetic_reconstruction()
    images = sorted_images(rec)
    result = result_from_reconstruction(rec, [im.name for im in images])
    assert result.registered == list(range(len(images)))
    cams = result.cameras
    assert (cams.width, cams.height) == (640, 400)
    np.testing.assert_allclose(cams.K[0].numpy(), [[600, 0, 310], [0, 620, 205], [0, 0, 1]], atol=1e-4)
    points = np.stack([p.xyz for p in rec.points3D.values()])
    for c2w, K, im in zip(cams.c2w.double().numpy(), cams.K.double().numpy(), images):
        # Camera centre: the translation of c2w is COLMAP's projection centre.
        np.testing.assert_allclose(c2w[:3, 3], im.projection_center(), atol=1e-5)
        # OpenCV pinhole projection with our w2c and K equals COLMAP's own projection.
        w2c = np.linalg.inv(c2w)
        cam_pts = points @ w2c[:3, :3].T + w2c[:3, 3]
        assert (cam_pts[:, 2] > 0).all()
        uv = cam_pts @ K.T
        uv = uv[:, :2] / uv[:, 2:]
        expected = np.stack([np.asarray(im.project_point(p)) for p in points])
        np.testing.assert_allclose(uv, expected, atol=2e-3)


def test_conversion_inverts_world_to_camera():
    rec = synthetic_reconstruction(n_frames=2)
    images = sorted_images(rec)
    result = result_from_reconstruction(rec, [im.name for im in images])
    for c2w, im in zip(result.cameras.c2w.double().numpy(), images):
        w2c = np.eye(4)
        w2c[:3, :4] = im.cam_from_world().matrix()
        np.testing.assert_allclose(c2w @ w2c, np.eye(4), atol=1e-5)
        np.testing.assert_allclose(np.linalg.det(c2w[:3, :3]), 1.0, atol=1e-5)


def test_unregistered_views_are_listed_not_invented():
    rec = synthetic_reconstruction(n_frames=4)
    images = sorted_images(rec)
    rec.deregister_frame(images[1].frame_id)
    names = [im.name for im in images] + ["never_seen.png"]
    result = result_from_reconstruction(rec, names)
    assert result.registered == [0, 2, 3]
    assert len(result.cameras) == 3
    assert result.n_views == 5
    assert images[1].name in result.reason and "never_seen.png" in result.reason
    assert "registered 3 of 5" in result.reason
    assert 0.0 < result.confidence <= 3 / 5


def test_nothing_reconstructed():
    result = result_from_reconstruction(None, ["a.png", "b.png"])
    assert result.cameras is None and result.registered == [] and result.confidence == 0.0
    assert "nothing" in result.reason


# ---- confidence, alignment ------------------------------------------------------------------


def test_confidence_formula():
    assert sfm_confidence(10, 10, 0.0, 5.0) == pytest.approx(1.0)
    assert sfm_confidence(5, 10, 0.0, 5.0) == pytest.approx(0.5)
    assert sfm_confidence(10, 10, 2.0, 5.0) == pytest.approx(0.75)
    assert sfm_confidence(10, 10, 0.0, 2.0) == pytest.approx(2 / 3)
    assert sfm_confidence(10, 10, 5.0, 5.0) == 0.0
    assert sfm_confidence(0, 10, 0.5, 5.0) == 0.0
    assert sfm_confidence(3, 10, math.nan, 0.0) == 0.0


def random_rotation(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


# ---- the auto decision ----------------------------------------------------------------------


def fake_result(n_views: int, registered: list[int]) -> SfmResult:
    cams = Cameras.orbit(len(registered)) if registered else None
    return SfmResult(cams, registered, n_views, confidence=0.8 * len(registered) / n_views,
                     reason=f"SfM registered {len(registered)} of {n_views} views")


def test_choose_single_and_few_views():
    assert choose_pose_method(1, None)[0] == "single"
    method, reason = choose_pose_method(5, None, min_views=8)
    assert method == "pointmap" and "5 views" in reason and "not run" in reason
    with pytest.raises(ReconError):
        choose_pose_method(0, None)


def test_choose_sfm_when_it_registered_enough():
    assert choose_pose_method(12, None)[0] == "sfm"  # run it, then ask again
    method, reason = choose_pose_method(30, fake_result(30, list(range(24))))
    assert method == "sfm" and "24 of 30" in reason


def test_choose_pointmap_when_sfm_registered_too_few():
    method, reason = choose_pose_method(12, fake_result(12, [0, 4, 7]))
    assert method == "pointmap"
    assert "SfM registered 3 of 12 views" in reason
    method, reason = choose_pose_method(12, fake_result(12, []))
    assert method == "pointmap" and "0 of 12" in reason
    assert choose_pose_method(10, fake_result(10, list(range(7))), min_registered_fraction=0.7)[0] == "sfm"
    assert choose_pose_method(10, fake_result(10, list(range(6))), min_registered_fraction=0.7)[0] == "pointmap"


# ---- estimate_cameras_sfm on small inputs ---------------------------------------------------


def test_mixed_sizes_are_refused():
    images = [np.ones((32, 32, 3), np.float32), np.ones((32, 40, 3), np.float32)]
    with pytest.raises(ReconError, match="one size"):
        estimate_cameras_sfm(images, names=["a.png", "b.png"])


def test_bad_options_are_refused():
    images = [np.ones((32, 32, 3), np.float32)] * 2
    with pytest.raises(ReconError, match="camera model"):
        estimate_cameras_sfm(images, options=SfmOptions(camera_model="OPENCV_FISHEYE"))
    with pytest.raises(ReconError, match="focal"):
        estimate_cameras_sfm(images, options=SfmOptions(focal_px=-3.0))


def test_one_image_is_not_an_error():
    result = estimate_cameras_sfm([np.ones((32, 32, 3), np.float32)])
    assert result.cameras is None and result.registered == [] and "at least 2" in result.reason


def test_featureless_images_fail_softly_and_workdir_is_kept(tmp_path):
    images = [np.full((64, 64, 4), v, np.float32) for v in (0.2, 0.5, 0.8)]
    options = SfmOptions(num_threads=1, camera_model="PINHOLE", focal_px=50.0)
    result = estimate_cameras_sfm(images, workdir=tmp_path / "sfm", options=options)
    assert result.cameras is None and result.registered == [] and result.confidence == 0.0
    assert "3 views" in result.reason
    db = pycolmap.Database.open(tmp_path / "sfm" / "database.db")
    try:
        (camera,) = db.read_all_cameras()  # one camera shared by all views, with the focal prior
    finally:
        db.close()
    assert camera.model_name == "PINHOLE" and camera.has_prior_focal_length
    np.testing.assert_allclose(camera.params, [50.0, 50.0, 32.0, 32.0])
    assert sorted(p.name for p in (tmp_path / "sfm" / "images").iterdir()) == ["00000.png", "00001.png", "00002.png"]


# ---- lego (slow) -----------------------------------------------------------------------------


def farthest_point_sample(points: np.ndarray, k: int) -> list[int]:
    """k indices spread over ``points [N,3]``, greedy farthest-point order from index 0, sorted."""
    chosen = [0]
    dist = np.linalg.norm(points - points[0], axis=1)
    for _ in range(k - 1):
        j = int(np.argmax(dist))
        chosen.append(j)
        dist = np.minimum(dist, np.linalg.norm(points - points[j], axis=1))
    return sorted(chosen)


def lego_views(k: int):
    """k lego train views spread over the sphere: (indices, RGBA images at LEGO_SIZE, cameras)."""
    if not LEGO.is_file():
        pytest.skip(f"lego eval data not found at {LEGO} (../shared/eval_data beside the repo)")
    cams = read_nerf(LEGO)
    idx = farthest_point_sample(cams.cameras.c2w[:, :3, 3].numpy(), k)
    images = []
    for i in idx:
        rgb, alpha = load_image(cams.image_paths[i])
        images.append(resize_image(torch.cat([rgb, alpha], dim=-1), LEGO_SIZE, LEGO_SIZE).numpy())
    return idx, images, cams


@pytest.mark.slow
def test_lego_30_views_register_with_accurate_rotations(tmp_path):
    idx, images, cams = lego_views(30)
    start = time.perf_counter()
    result = estimate_cameras_sfm(images, names=[cams.image_paths[i].name for i in idx], workdir=tmp_path)
    print(f"lego 30 views: {result.reason}; confidence {result.confidence:.2f}; "
          f"{result.seconds:.1f} s SfM, {time.perf_counter() - start:.1f} s wall")
    assert len(result.registered) >= 23, result.reason  # measured: 24 of 30
    assert result.cameras is not None and (result.cameras.width, result.cameras.height) == (LEGO_SIZE, LEGO_SIZE)
    focal_true = float(cams.cameras.K[0, 0, 0]) * LEGO_SIZE / cams.cameras.width
    assert float(result.cameras.K[0, 0, 0]) == pytest.approx(focal_true, rel=0.03)
    gt = cams.cameras.c2w[[idx[j] for j in result.registered]].double().numpy()
    errors = camera_errors(result.cameras.c2w.double(), torch.from_numpy(gt))[0].numpy()
    print(f"rotation error after similarity alignment: max {errors.max():.2f} deg, mean {errors.mean():.2f} deg")
    assert errors.max() < 2.0
    assert choose_pose_method(30, result)[0] == "sfm"
    # The kept model is in workdir/sparse, and the COLMAP reader reads back the same cameras.
    saved = read_cameras(tmp_path)
    assert saved.names == [f"{j:05d}.png" for j in result.registered]
    torch.testing.assert_close(saved.cameras.c2w, result.cameras.c2w, atol=1e-5, rtol=0)
    torch.testing.assert_close(saved.cameras.K, result.cameras.K)


@pytest.mark.slow
def test_lego_12_views_fall_back_to_pointmap():
    idx, images, cams = lego_views(12)
    result = estimate_cameras_sfm(images, names=[cams.image_paths[i].name for i in idx])
    print(f"lego 12 views: {result.reason}; {result.seconds:.1f} s")
    method, reason = choose_pose_method(12, result)
    assert method == "pointmap", reason
    assert f"SfM registered {len(result.registered)} of 12 views" in reason
