"""Camera readers: real datasets, synthetic round trips through every format, and bad input.

Synthetic files are written here by code that applies each format's convention on its own
(not by calling the readers' conversions), then read back and compared with the cameras they
came from: c2w, K, size, and the pixels that random 3D points project to.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from recon.io import (
    CameraSet,
    read_cameras,
    read_cameras_json,
    read_colmap,
    read_idr,
    read_llff,
    read_nerf,
    write_cameras_json,
)
from renderer.cameras import Cameras
from renderer.errors import CameraError, FileFormatError, ReconError

EVAL_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "eval_data"
LEGO = EVAL_DATA / "nerf_synthetic_lego" / "transforms_train.json"
FOX = EVAL_DATA / "fox_instantngp" / "transforms.json"

W, H = 64, 48
FX, FY, CX, CY = 50.0, 55.0, 31.3, 22.7
N = 5
GL_FLIP = np.diag([1.0, -1.0, -1.0, 1.0])  # OpenCV <-> OpenGL camera axes (written out, not imported)


# ---- helpers ------------------------------------------------------------------------------------


def synthetic(fx=FX, fy=FY, cx=CX, cy=CY, w=W, h=H) -> Cameras:
    """N float64 cameras on an orbit around an off-origin centre, with non-square pixels."""
    cams = Cameras.orbit(N, radius=3.0, elevation_deg=25.0, center=(0.3, -0.2, 0.5), width=w, height=h).to(dtype=torch.float64)
    K = torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=torch.float64)
    return Cameras(cams.c2w, K.expand(N, 3, 3).clone(), w, h)


def random_points(n=50, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, generator=g, dtype=torch.float64) - 0.5) + torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64)


def assert_same_cameras(got: Cameras, want: Cameras, atol=1e-5, px=1e-4):
    assert (got.width, got.height) == (want.width, want.height)
    assert got.c2w.shape == want.c2w.shape
    torch.testing.assert_close(got.c2w.double(), want.c2w.double(), atol=atol, rtol=0)
    torch.testing.assert_close(got.K.double(), want.K.double(), atol=atol * 100, rtol=1e-6)
    pts = random_points()
    uv_got, z_got = got.to(dtype=torch.float64).project(pts)
    uv_want, z_want = want.project(pts)
    assert (z_want > 0).all()
    assert (uv_got - uv_want).abs().max() < px
    torch.testing.assert_close(z_got, z_want, atol=1e-5, rtol=0)


def write_png(path: Path, w=W, h=H):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (w, h)).save(path)


def rotation(seed=1) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return q * np.sign(np.linalg.det(q))


def assert_one_line_error(exc_info, path: Path, *words):
    msg = str(exc_info.value)
    assert isinstance(exc_info.value, ReconError)
    assert "\n" not in msg
    assert str(path) in msg, msg
    for w in words:
        assert w in msg, msg


def requires_eval_data(path: Path):
    return pytest.mark.skipif(not path.exists(), reason=f"eval data not found at {path} (../shared/eval_data beside the repo)")


# ---- real data ----------------------------------------------------------------------------------


@requires_eval_data(LEGO)
def test_lego_optical_axes_pass_through_origin():
    s = read_cameras(LEGO)
    assert s.source == "nerf" and len(s) == 100
    cams = s.cameras.to(dtype=torch.float64)
    assert (cams.width, cams.height) == (800, 800)
    torch.testing.assert_close(cams.K[:, 0, 0], torch.full((100,), 1111.11, dtype=torch.float64), atol=0.1, rtol=0)
    torch.testing.assert_close(cams.K[:, 1, 1], cams.K[:, 0, 0])
    to_origin = torch.nn.functional.normalize(-cams.centers, dim=-1)
    angle_deg = torch.rad2deg(torch.acos((to_origin * cams.forward).sum(-1).clamp(-1, 1)))
    assert angle_deg.max() < 2.0
    assert all(p.exists() for p in s.image_paths)
    assert s.image_paths[0].name == "r_0.png"
    assert s.distortion == [{}] * 100 and s.near_far is None


@requires_eval_data(FOX)
def test_fox_scene_centre_projects_inside_every_image():
    s = read_cameras(FOX.parent)
    assert s.source == "nerf" and len(s) == 67
    cams = s.cameras.to(dtype=torch.float64)
    assert (cams.width, cams.height) == (1080, 1920)
    # The point closest (least squares) to all optical axes: sum_i (I - d d^T)(p - c_i) = 0.
    d, c = cams.forward, cams.centers
    A = torch.eye(3, dtype=d.dtype) - d[:, :, None] * d[:, None, :]
    centre = torch.linalg.solve(A.sum(0), (A @ c[:, :, None]).sum(0)).squeeze(-1)
    assert centre.norm() < 0.5  # colmap2nerf re-centres the world on it; cameras are 3.8-6.3 away
    uv, depth = cams.project(centre[None])
    assert (depth > 0).all()
    assert (uv[..., 0] > 0).all() and (uv[..., 0] < 1080).all()
    assert (uv[..., 1] > 0).all() and (uv[..., 1] < 1920).all()
    assert set(s.distortion[0]) == {"k1", "k2", "p1", "p2"}
    assert s.distortion[0]["k1"] == pytest.approx(0.0578421)
    assert all(p.exists() for p in s.image_paths)


# ---- NeRF -----------------------------------------------------------------------------------------


def write_transforms(path: Path, cams: Cameras, names, top: dict, per_frame=None, drop_ext=False):
    frames = []
    for i, name in enumerate(names):
        c2w_gl = cams.c2w[i].numpy() @ GL_FLIP
        frame = {"file_path": "./" + (str(Path(name).with_suffix("")) if drop_ext else name), "transform_matrix": c2w_gl.tolist()}
        frame.update((per_frame or {}).get(i, {}))
        frames.append(frame)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**top, "frames": frames}))
    return path


def test_nerf_explicit_intrinsics(tmp_path):
    cams = synthetic()
    names = [f"images/{i:04d}.jpg" for i in range(N)]
    top = {"fl_x": FX, "fl_y": FY, "cx": CX, "cy": CY, "w": float(W), "h": float(H), "k1": 0.01, "p2": -0.002, "aabb_scale": 4}
    path = write_transforms(tmp_path / "transforms.json", cams, names, top)
    s = read_cameras(tmp_path)
    assert s.source == "nerf"
    assert_same_cameras(s.cameras, cams)
    assert s.image_paths == [tmp_path / n for n in names]
    assert s.distortion[3] == {"k1": 0.01, "p2": -0.002}
    assert read_nerf(path).cameras.c2w.dtype == torch.float32


def test_nerf_angles_and_image_headers(tmp_path):
    # Blender style: only camera_angle_x, no w/h, file_path without extension.
    fx = 0.5 * W / np.tan(0.5 * 0.8)
    cams = synthetic(fx=fx, fy=fx, cx=W / 2, cy=H / 2)
    names = [f"train/r_{i}.png" for i in range(N)]
    for n in names:
        write_png(tmp_path / n)
    write_transforms(tmp_path / "transforms_train.json", cams, names, {"camera_angle_x": 0.8}, drop_ext=True)
    s = read_cameras(tmp_path / "transforms_train.json")
    assert_same_cameras(s.cameras, cams)
    assert s.image_paths == [tmp_path / n for n in names]


def test_nerf_per_frame_overrides_and_3x4(tmp_path):
    cams = synthetic()
    K = cams.K.clone()
    K[2, 0, 0], K[2, 1, 1] = 70.0, 70.0
    cams = Cameras(cams.c2w, K, W, H)
    top = {"fl_x": FX, "fl_y": FY, "cx": CX, "cy": CY}
    per_frame = {i: {"w": W, "h": H} for i in range(N)}
    per_frame[2].update({"fl_x": 70.0})
    path = write_transforms(tmp_path / "t.json", cams, [f"{i}.png" for i in range(N)], top, per_frame)
    data = json.loads(path.read_text())
    data["frames"][1]["transform_matrix"] = data["frames"][1]["transform_matrix"][:3]
    path.write_text(json.dumps(data))
    assert_same_cameras(read_nerf(path).cameras, cams)


def test_nerf_mixed_sizes_are_refused_unless_views_pick_one(tmp_path):
    cams = synthetic()
    per_frame = {i: {"w": W, "h": H} for i in range(N)}
    per_frame[4] = {"w": 2 * W, "h": 2 * H}
    path = write_transforms(tmp_path / "t.json", cams, [f"{i}.png" for i in range(N)], {"fl_x": FX, "fl_y": FY, "cx": CX, "cy": CY}, per_frame)
    with pytest.raises(FileFormatError) as e:
        read_nerf(path)
    assert_one_line_error(e, path, "different sizes", "64x48", "128x96", "select views")
    s = read_cameras(path, views=[0, 1, "3"])
    assert len(s) == 3 and s.cameras.width == W
    assert_same_cameras(s.cameras, cams[[0, 1, 3]])


# ---- COLMAP ---------------------------------------------------------------------------------------


def write_colmap(model_dir: Path, cams: Cameras, model="PINHOLE", params=None, binary=False, names=None):
    """A COLMAP model of ``cams`` built with pycolmap: w2c = cam_from_world, OpenCV axes."""
    import pycolmap

    rec = pycolmap.Reconstruction()
    cam = pycolmap.Camera.create_from_model_name(1, model, FX, cams.width, cams.height)
    cam.params = params if params is not None else [FX, FY, CX, CY]
    rec.add_camera_with_trivial_rig(cam)
    names = names or [f"img_{i}.png" for i in range(len(cams))]
    w2c = cams.w2c.numpy()
    # Insert in reverse so that id order differs from name order (the reader sorts by name).
    for i in reversed(range(len(cams))):
        image = pycolmap.Image(name=names[i], camera_id=1, image_id=len(cams) - i)
        pose = pycolmap.Rigid3d(pycolmap.Rotation3d(w2c[i, :3, :3]), w2c[i, :3, 3])
        rec.add_image_with_trivial_frame(image, pose)
    model_dir.mkdir(parents=True, exist_ok=True)
    (rec.write_binary if binary else rec.write_text)(str(model_dir))
    return rec


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_colmap_round_trip_matches_pycolmap_projection(tmp_path, binary):
    cams = synthetic()
    scene = tmp_path / "scene"
    (scene / "images").mkdir(parents=True)
    rec = write_colmap(scene / "sparse" / "0", cams, binary=binary)
    s = read_cameras(scene)
    assert s.source == "colmap"
    assert_same_cameras(s.cameras, cams)
    assert s.image_paths == [scene / "images" / f"img_{i}.png" for i in range(N)]
    assert s.distortion == [{}] * N
    # Against pycolmap's own projection (pixels of the PINHOLE model).
    pts = random_points(20).numpy()
    uv, _ = s.cameras.to(dtype=torch.float64).project(torch.from_numpy(pts))
    for i, name in enumerate(s.names):
        image = rec.find_image_with_name(name)
        ref = np.array([image.project_point(p) for p in pts])
        assert np.abs(uv[i].numpy() - ref).max() < 1e-4


def test_colmap_opencv_distortion_and_model_folder(tmp_path):
    cams = synthetic()
    params = [FX, FY, CX, CY, 0.1, -0.05, 0.001, 0.002]
    rec = write_colmap(tmp_path / "model", cams, model="OPENCV", params=params, binary=True)
    s = read_colmap(tmp_path / "model" / "cameras.bin")
    assert_same_cameras(s.cameras, cams)
    assert s.distortion[0] == {"k1": 0.1, "k2": -0.05, "p1": 0.001, "p2": 0.002}
    np.testing.assert_allclose(s.cameras.K[0].double().numpy(), rec.cameras[1].calibration_matrix(), atol=1e-5)
    assert s.image_paths[0] == tmp_path / "img_0.png"  # no images/ folder: names relative to the model's parent
    # Undistorted pixels agree with pycolmap once its distortion is zeroed.
    cam = rec.cameras[1]
    cam.params = [FX, FY, CX, CY, 0, 0, 0, 0]
    pts = random_points(10).numpy()
    w2c = cams.w2c[0].numpy()
    ref = cam.img_from_cam(pts @ w2c[:3, :3].T + w2c[:3, 3])
    uv, _ = s.cameras.to(dtype=torch.float64)[0].project(torch.from_numpy(pts))
    assert np.abs(uv[0].numpy() - ref).max() < 1e-4


def test_colmap_simple_radial_maps_k_to_k1(tmp_path):
    cams = synthetic(fy=FX)
    write_colmap(tmp_path / "sparse", cams, model="SIMPLE_RADIAL", params=[FX, CX, CY, 0.03])
    s = read_cameras(tmp_path)
    assert_same_cameras(s.cameras, cams)
    assert s.distortion[0] == {"k1": 0.03}


# ---- LLFF -----------------------------------------------------------------------------------------


def write_poses_bounds(path: Path, cams: Cameras, near_far: np.ndarray):
    """LLFF rows: [down, right, backwards, centre, (h, w, f)] flattened row-major, then near, far."""
    c2w = cams.c2w.numpy()
    rows = []
    for i in range(len(cams)):
        m = np.stack([c2w[i, :3, 1], c2w[i, :3, 0], -c2w[i, :3, 2], c2w[i, :3, 3], [cams.height, cams.width, float(cams.K[i, 0, 0])]], axis=1)
        rows.append(np.concatenate([m.ravel(), near_far[i]]))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.stack(rows))
    return path


def test_llff_without_images_folder(tmp_path):
    cams = synthetic(fy=FX, cx=W / 2, cy=H / 2)
    bounds = np.stack([np.linspace(1.0, 2.0, N), np.linspace(5.0, 6.0, N)], axis=1)
    path = write_poses_bounds(tmp_path / "poses_bounds.npy", cams, bounds)
    s = read_cameras(path)
    assert s.source == "llff"
    assert_same_cameras(s.cameras, cams)
    np.testing.assert_allclose(s.near_far.numpy(), bounds, rtol=1e-6)
    sub = s.select([4, 1])
    np.testing.assert_allclose(sub.near_far.numpy(), bounds[[4, 1]], rtol=1e-6)


def test_llff_scales_intrinsics_to_the_images_folder(tmp_path):
    full = synthetic(fy=FX, cx=W, cy=H, w=2 * W, h=2 * H)  # principal point at the centre
    write_poses_bounds(tmp_path / "poses_bounds.npy", full, np.tile([1.0, 5.0], (N, 1)))
    for i in range(N):
        write_png(tmp_path / "images" / f"IMG_{i:02d}.JPG", W, H)
    s = read_cameras(tmp_path)
    assert_same_cameras(s.cameras, full.resize(W, H))
    assert [p.name for p in s.image_paths] == [f"IMG_{i:02d}.JPG" for i in range(N)]
    (tmp_path / "images" / "IMG_04.JPG").unlink()
    with pytest.raises(FileFormatError) as e:
        read_cameras(tmp_path)
    assert_one_line_error(e, tmp_path / "poses_bounds.npy", "5 poses", "4 images")


# ---- IDR / NeuS -----------------------------------------------------------------------------------


def write_idr(path: Path, cams: Cameras, scale_mat: np.ndarray, gains):
    """world_mat_i = gain_i * K [R|t] @ scale_mat^-1, so world_mat @ scale_mat projects ``cams``' world."""
    arrays = {}
    for i in range(len(cams)):
        K4 = np.eye(4)
        K4[:3, :3] = cams.K[i].numpy()
        arrays[f"world_mat_{i}"] = gains[i] * K4 @ cams.w2c[i].numpy() @ np.linalg.inv(scale_mat)
        arrays[f"scale_mat_{i}"] = scale_mat
    np.savez(path, **arrays)
    return path


def idr_scale_mat():
    S = np.diag([2.5, 2.5, 2.5, 1.0])
    S[:3, 3] = [1.0, 2.0, 3.0]
    return S


def test_idr_with_scale_mat_and_image_folder(tmp_path):
    cams = synthetic()
    write_idr(tmp_path / "cameras_sphere.npz", cams, idr_scale_mat(), gains=[1.0, -1.7, 3.2, 0.01, -40.0])
    for i in range(N):
        write_png(tmp_path / "image" / f"{i:03d}.png")
    s = read_cameras(tmp_path)
    assert s.source == "idr"
    assert_same_cameras(s.cameras, cams)
    assert s.image_paths[2] == tmp_path / "image" / "002.png"


def test_idr_size_from_arguments_or_error(tmp_path):
    cams = synthetic()
    path = write_idr(tmp_path / "cameras.npz", cams, np.eye(4), gains=[1.0] * N)
    assert_same_cameras(read_idr(path, width=W, height=H).cameras, cams)
    with pytest.raises(FileFormatError) as e:
        read_cameras(path)
    assert_one_line_error(e, path, "image size unknown", "width and height")


# ---- our cameras.json -----------------------------------------------------------------------------


def test_cameras_json_round_trip_is_exact(tmp_path):
    cams = synthetic()
    c2w = cams.c2w.clone()
    c2w[:, :3, 3] += torch.tensor([1e-9, 1 / 3, np.pi], dtype=torch.float64)  # digits that need full precision
    cams = Cameras(c2w, cams.K, W, H)
    images = [tmp_path / "imgs" / f"v{i}.png" for i in range(N)]
    src = CameraSet(cams, images, [{"k1": 0.1 / 3}] + [{}] * (N - 1), "test", near_far=torch.rand(N, 2, dtype=torch.float64) + 1)
    path = write_cameras_json(tmp_path / "out" / "cameras.json", src, extra={"pose_method": "given", "world": "input"})
    back = read_cameras_json(path, dtype=torch.float64)
    assert torch.equal(back.cameras.c2w, cams.c2w) and torch.equal(back.cameras.K, cams.K)
    assert torch.equal(back.near_far, src.near_far)
    assert back.distortion == src.distortion
    assert [p.resolve() for p in back.image_paths] == [p.resolve() for p in images]
    data = json.loads(path.read_text())
    assert data["convention"] == "opencv" and data["pose_method"] == "given" and data["frames"][0]["file"] == "../imgs/v0.png"
    assert list(path.parent.iterdir()) == [path]  # the temporary file is gone

    cams32 = cams.to(dtype=torch.float32)
    path = write_cameras_json(tmp_path / "c32.json", cams32, files=[f"{i}.png" for i in range(N)])
    back = read_cameras(path)
    assert back.source == "cameras.json"
    assert torch.equal(back.cameras.c2w, cams32.c2w) and torch.equal(back.cameras.K, cams32.K)
    assert back.names == [f"{i}.png" for i in range(N)]


# ---- CameraSet.select -----------------------------------------------------------------------------


def nerf_set(tmp_path) -> CameraSet:
    names = [f"r_{i}.png" for i in range(N)]
    path = write_transforms(tmp_path / "transforms.json", synthetic(), names, {"fl_x": FX, "fl_y": FY, "cx": CX, "cy": CY, "w": W, "h": H})
    return read_cameras(path)


def test_select_by_index_and_name(tmp_path):
    s = nerf_set(tmp_path)
    sub = s.select([2, "r_4", "r_1.png", "0"])
    assert sub.names == ["r_2.png", "r_4.png", "r_1.png", "r_0.png"]
    torch.testing.assert_close(sub.cameras.c2w, s.cameras.c2w[[2, 4, 1, 0]])
    assert len(sub) == 4 and sub.source == "nerf"


@pytest.mark.parametrize("bad", [7, "r_9", "-1", "nope.png"])
def test_select_names_the_bad_entry(tmp_path, bad):
    s = nerf_set(tmp_path)
    with pytest.raises(ReconError) as e:
        s.select([0, bad])
    msg = str(e.value)
    assert "\n" not in msg and str(bad).replace(".png", "").lstrip("-") in msg


# ---- bad input ------------------------------------------------------------------------------------


def _nerf_bad(tmp_path, mutate):
    path = write_transforms(tmp_path / "transforms.json", synthetic(), [f"{i}.png" for i in range(N)], {"fl_x": FX, "w": W, "h": H})
    data = json.loads(path.read_text())
    mutate(data)
    path.write_text(json.dumps(data))
    return path


def _set(frame, key, value):
    frame[key] = value


NERF_BAD = {
    "missing-frames": (lambda d: d.pop("frames"), FileFormatError, "missing key 'frames'"),
    "missing-matrix": (lambda d: d["frames"][2].pop("transform_matrix"), FileFormatError, "frame 2 is missing key 'transform_matrix'"),
    "missing-focal": (lambda d: d.pop("fl_x"), FileFormatError, "no focal length"),
    "nan-pose": (lambda d: d["frames"][1]["transform_matrix"][0].__setitem__(3, float("nan")), CameraError, "camera 1 has NaN"),
    "zero-pose": (lambda d: _set(d["frames"][3], "transform_matrix", np.zeros((4, 4)).tolist()), CameraError, "camera 3 rotation"),
    "scaled-rotation": (
        lambda d: _set(d["frames"][0], "transform_matrix", (np.diag([2.0, 2.0, 2.0, 1.0]) @ np.array(d["frames"][0]["transform_matrix"])).tolist()),
        CameraError,
        "det 8",
    ),
    "wrong-shape": (lambda d: _set(d["frames"][0], "transform_matrix", np.eye(3).tolist()), FileFormatError, "must be a 4x4 matrix, got 3x3"),
    "fisheye": (lambda d: d.__setitem__("is_fisheye", True), FileFormatError, "fisheye"),
}


@pytest.mark.parametrize("case", list(NERF_BAD))
def test_nerf_bad_input(tmp_path, case):
    mutate, error, words = NERF_BAD[case]
    path = _nerf_bad(tmp_path, mutate)
    with pytest.raises(error) as e:
        read_nerf(path)
    assert_one_line_error(e, path, words)


def test_malformed_json(tmp_path):
    path = tmp_path / "transforms.json"
    path.write_text('{"frames": [ {"file_path": ')
    with pytest.raises(FileFormatError) as e:
        read_cameras(path)
    assert_one_line_error(e, path, "malformed JSON", "line 1")


def _ours(tmp_path, mutate):
    path = write_cameras_json(tmp_path / "cameras.json", synthetic(), files=[f"{i}.png" for i in range(N)])
    data = json.loads(path.read_text())
    mutate(data)
    path.write_text(json.dumps(data))
    return path


OURS_BAD = {
    "opengl": (lambda d: d.__setitem__("convention", "opengl"), "convention is 'opengl'"),
    "missing-K": (lambda d: d["frames"][1].pop("K"), "frame 1 is missing key 'K'"),
    "K-shape": (lambda d: _set(d["frames"][0], "K", [[1, 0], [0, 1]]), "frame 0 K must be a 3x3 matrix, got 2x2"),
    "mixed-sizes": (lambda d: _set(d["frames"][2], "width", 2 * W), "different sizes"),
    "bad-width": (lambda d: _set(d["frames"][2], "width", 12.5), "frame 2 width"),
}


@pytest.mark.parametrize("case", list(OURS_BAD))
def test_cameras_json_bad_input(tmp_path, case):
    mutate, words = OURS_BAD[case]
    path = _ours(tmp_path, mutate)
    with pytest.raises(FileFormatError) as e:
        read_cameras(path)
    assert_one_line_error(e, path, words)


def test_llff_bad_input(tmp_path):
    path = tmp_path / "poses_bounds.npy"
    np.save(path, np.zeros((3, 15)))
    with pytest.raises(FileFormatError) as e:
        read_cameras(path)
    assert_one_line_error(e, path, "N x 17", "3x15")
    path.write_bytes(b"not an npy file")
    with pytest.raises(FileFormatError) as e:
        read_cameras(tmp_path)
    assert_one_line_error(e, path, "not a readable .npy")
    rows = np.zeros((2, 17))
    rows[:, :15] = np.concatenate([np.eye(3), np.zeros((3, 1)), [[H], [W], [FX]]], axis=1).ravel()
    rows[:, 15:] = [1.0, 5.0]
    rows[1, 3] = np.nan
    np.save(path, rows)
    with pytest.raises(CameraError) as e:
        read_llff(path)
    assert_one_line_error(e, path, "camera 1 has NaN")


def test_idr_bad_input(tmp_path):
    cams = synthetic()
    path = write_idr(tmp_path / "cameras_sphere.npz", cams, idr_scale_mat(), gains=[1.0] * N)
    for i in range(N - 1):
        write_png(tmp_path / "image" / f"{i:03d}.png")
    with pytest.raises(FileFormatError) as e:
        read_cameras(path)
    assert_one_line_error(e, path, "5 cameras", "4 images")

    arrays = dict(np.load(path))
    arrays["world_mat_2"] = np.zeros((4, 4))
    np.savez(path, **arrays)
    with pytest.raises(CameraError) as e:
        read_idr(path, width=W, height=H)
    assert_one_line_error(e, path, "camera 2", "singular")

    arrays["world_mat_2"] = np.full((4, 4), np.nan)
    np.savez(path, **arrays)
    with pytest.raises(CameraError) as e:
        read_idr(path, width=W, height=H)
    assert_one_line_error(e, path, "camera 2 has NaN")

    arrays["world_mat_2"] = np.eye(3)
    np.savez(path, **arrays)
    with pytest.raises(FileFormatError) as e:
        read_idr(path, width=W, height=H)
    assert_one_line_error(e, path, "world_mat_2 must be a 4x4 matrix, got 3x3")

    del arrays["world_mat_2"]
    np.savez(path, **arrays)
    with pytest.raises(FileFormatError) as e:
        read_idr(path, width=W, height=H)
    assert_one_line_error(e, path, "world_mat_2 is missing")

    path.write_bytes(b"PK garbage")
    with pytest.raises(FileFormatError) as e:
        read_idr(path, width=W, height=H)
    assert_one_line_error(e, path, "not a readable .npz")


def test_colmap_bad_input(tmp_path):
    model = tmp_path / "sparse" / "0"
    write_colmap(model, synthetic())
    (model / "cameras.txt").write_text("1 PINHOLE 64 abc\n")
    with pytest.raises(FileFormatError) as e:
        read_cameras(tmp_path)
    assert_one_line_error(e, model, "cannot read the COLMAP model")

    write_colmap(model, synthetic(), model="OPENCV_FISHEYE", params=[FX, FY, CX, CY, 0, 0, 0, 0])
    with pytest.raises(FileFormatError) as e:
        read_cameras(tmp_path)
    assert_one_line_error(e, model, "OPENCV_FISHEYE", "not supported")

    with pytest.raises(FileFormatError) as e:
        read_colmap(tmp_path / "elsewhere")
    assert_one_line_error(e, tmp_path / "elsewhere", "no such file")


@pytest.mark.parametrize("name", ["notes.txt", "folder", "missing.json", "other.json", "data.npz"])
def test_unknown_or_missing_file(tmp_path, name):
    path = tmp_path / name
    if name == "notes.txt":
        path.write_text("hello")
    elif name == "folder":
        path.mkdir()
    elif name == "other.json":
        path.write_text('{"frames": [{"file": "a.png"}]}')
    elif name == "data.npz":
        np.savez(path, a=np.zeros(3))
    with pytest.raises(FileFormatError) as e:
        read_cameras(path)
    words = ["no such file"] if name == "missing.json" else ["not a camera file", "transforms.json", "COLMAP", "poses_bounds.npy"]
    assert_one_line_error(e, path, *words)
