"""The pipeline API: posed input keeps the world frame, unposed and single modes, refinement, reports,
and bad input refused with one line before anything is written."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from recon.core.errors import ReconError
from recon.io import read_cameras, read_cameras_json
from recon.pipeline.options import Mode, ReconstructOptions
from recon.pipeline.run import reconstruct
from recon.pipeline.write import write_outputs
from renderer import Gaussians
from renderer.io.ply import read_ply

LEGO_VIEWS = [26, 86, 2, 55]


def _opts(ckpt, **kw) -> ReconstructOptions:
    return ReconstructOptions(checkpoint=ckpt, device="cpu", **kw)


def test_posed_lego_keeps_the_world_frame(eval_data, tiny_checkpoint, tmp_path):
    lego = eval_data / "nerf_synthetic_lego"
    res = reconstruct(lego, _opts(tiny_checkpoint, views=LEGO_VIEWS))
    out = tmp_path / "out"
    files = write_outputs(res, out, ("ply", "splat")).files
    assert {p.name for p in files} == {"gaussians.ply", "gaussians.splat", "cameras.json", "report.json"}
    want = read_cameras(lego, views=LEGO_VIEWS)
    got = read_cameras_json(out / "cameras.json")
    assert torch.allclose(got.cameras.c2w, want.cameras.c2w, atol=1e-5)
    assert torch.allclose(got.cameras.K, want.cameras.K, atol=1e-4)
    assert (got.cameras.width, got.cameras.height) == (800, 800)
    assert [p.name for p in got.image_paths] == [p.name for p in want.image_paths]
    rep = json.loads((out / "report.json").read_text())
    assert rep["mode"] == "posed" and rep["pose_method"] == "given" and rep["views"] == 4
    assert set(rep["timings"]) >= {"load", "model_load", "preprocess", "predict", "export"}
    g = read_ply(out / "gaussians.ply")
    assert len(g) == rep["gaussians"] > 0
    # Gaussians live in lego's world: around the origin, inside the camera sphere (radius ~4).
    centre = g.means.median(0).values
    assert float(centre.norm()) < 1.5 and float(g.means.norm(dim=-1).median()) < 4.0


def test_cameras_file_for_other_images_is_refused(eval_data, tiny_checkpoint, tmp_path):
    lego = eval_data / "nerf_synthetic_lego"
    imgs = [lego / "train" / f"r_{i}.png" for i in (0, 1, 2)]
    cams = tmp_path / "cams.json"
    from recon.io import write_cameras_json

    write_cameras_json(cams, read_cameras(lego, views=[0, 1]))  # 2 cameras, other names
    data = json.loads(cams.read_text())
    for i, f in enumerate(data["frames"]):
        f["file"] = f"other_{i}.png"
    cams.write_text(json.dumps(data))
    with pytest.raises(ReconError, match="no camera for 3 of 3 image"):
        reconstruct(imgs, _opts(tiny_checkpoint, cameras=cams))


def test_nan_pose_is_refused(eval_data, tiny_checkpoint, tmp_path):
    lego = eval_data / "nerf_synthetic_lego"
    src = json.loads((lego / "transforms_train.json").read_text())
    frames = src["frames"][:2]
    for f in frames:
        f["file_path"] = str(lego / f["file_path"].lstrip("./"))
    frames[1]["transform_matrix"][0][3] = float("nan")
    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / "transforms.json").write_text(json.dumps({**src, "frames": frames}))
    with pytest.raises(ReconError, match="camera 1 has NaN"):
        reconstruct(folder, _opts(tiny_checkpoint))


def _object_photo(path, size=(96, 80), seed=0):
    rng = np.random.default_rng(seed)
    img = np.full((size[1], size[0], 3), 235, np.uint8)
    yy, xx = np.mgrid[: size[1], : size[0]]
    disc = (xx - size[0] / 2) ** 2 + (yy - size[1] / 2) ** 2 < (min(size) / 3) ** 2
    img[disc] = rng.integers(0, 255, (int(disc.sum()), 3), dtype=np.uint8)
    Image.fromarray(img).save(path)
    return path


def test_unposed_mode_reports_pointmap_cameras(tiny_checkpoint, tmp_path):
    paths = [_object_photo(tmp_path / f"v{i}.png", seed=i) for i in range(3)]
    res = reconstruct(paths, _opts(tiny_checkpoint))
    assert res.report["mode"] == "unposed" and res.report["pose_method"] == "pointmap"
    assert "fewer than" in res.report["pose_reason"]
    assert len(res.cameras) == 3 and torch.allclose(res.cameras.c2w[0], torch.eye(4), atol=1e-5)
    assert (res.cameras.width, res.cameras.height) == (96, 80)


def test_refinement_is_reported(eval_data, tiny_checkpoint):
    lego = eval_data / "nerf_synthetic_lego"
    res = reconstruct(lego, _opts(tiny_checkpoint, views=[26, 86], refine_steps=5))
    r = res.report["refine"]
    assert r["steps"] == 5 and r["input_psnr_before"] > 0 and r["input_psnr_after"] > 0
    assert "refine" in res.report["timings"]


@pytest.mark.parametrize("case", ["missing", "empty_folder", "text_png", "posed_without_cameras"])
def test_bad_input_is_one_line(case, tiny_checkpoint, tmp_path):
    opts = _opts(tiny_checkpoint)
    if case == "missing":
        inputs = [tmp_path / "nope.png"]
    elif case == "empty_folder":
        (tmp_path / "empty").mkdir()
        inputs = [tmp_path / "empty"]
    elif case == "text_png":
        (tmp_path / "a.png").write_text("not an image")
        inputs = [tmp_path / "a.png"]
    else:
        inputs, opts = [_object_photo(tmp_path / "a.png")], _opts(tiny_checkpoint, mode="posed")
    with pytest.raises(ReconError) as e:
        reconstruct(inputs, opts)
    assert "\n" not in str(e.value)


def test_output_folder_that_is_a_file(eval_data, tiny_checkpoint, tmp_path):
    res = reconstruct(eval_data / "nerf_synthetic_lego", _opts(tiny_checkpoint, views=[26, 86]))
    target = tmp_path / "out"
    target.write_text("I am a file")
    with pytest.raises(ReconError, match="not a folder"):
        write_outputs(res, target)
    assert target.read_text() == "I am a file"


def test_single_image_uses_the_canonical_camera(tiny_checkpoint, tmp_path):
    path = _object_photo(tmp_path / "one.png", size=(120, 90))
    res = reconstruct([path], _opts(tiny_checkpoint))
    assert res.report["mode"] == "single" and res.report["pose_method"] == "canonical"
    cams = res.cameras
    assert len(cams) == 1 and torch.allclose(cams.centers[0], torch.tensor([0.0, 0.0, -2.5]))
    # The crop is square at the model's size and the K goes with it.
    assert cams.width == cams.height == 32
    assert len(res.gaussians) > 0


@pytest.mark.slow
def test_auto_mode_falls_back_to_pointmap_when_sfm_registers_too_few(eval_data, tiny_checkpoint, tmp_path):
    """12 lego views spread over the sphere share too few features for SfM (it registers ~0-3):
    auto mode must fall back to the learned cameras and say so, with SfM's counts, in the report."""
    from recon.io import read_cameras
    from recon.io.images import load_image, resize_image, write_png

    lego = eval_data / "nerf_synthetic_lego"
    cams = read_cameras(lego / "transforms_train.json")
    centres = cams.cameras.c2w[:, :3, 3]
    chosen = [0]
    dist = (centres - centres[0]).norm(dim=-1)
    for _ in range(11):
        j = int(dist.argmax())
        chosen.append(j)
        dist = torch.minimum(dist, (centres - centres[j]).norm(dim=-1))
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in sorted(chosen):
        rgb, alpha = load_image(cams.image_paths[i])
        write_png(folder / f"view_{i:03d}.png", resize_image(torch.cat([rgb, alpha], -1), 400, 400))
    res = reconstruct(folder, _opts(tiny_checkpoint))
    rep = res.report
    assert rep["mode"] == "unposed" and rep["pose_method"] == "pointmap"
    assert "SfM registered" in rep["pose_reason"] and "of 12 views" in rep["pose_reason"]
    assert rep["sfm"]["views"] == 12 and rep["sfm"]["registered"] < 9
    assert rep["pose_masks"] is True  # RGBA photos: the alpha masks restrict the pointmap pose to the object


def test_package_level_api(tiny_checkpoint, tmp_path):
    import subprocess
    import sys

    import recon

    res = recon.reconstruct(recon_examples() / "toy_posed", _opts(tiny_checkpoint))
    files = write_outputs(res, tmp_path / "api", ["ply"]).files
    assert (tmp_path / "api" / "gaussians.ply") in files and len(res.cameras) == 4
    # Importing recon loads none of the heavy optional libraries (they load when a stage needs them).
    code = "import sys, recon; print(sorted({'gsplat', 'gradio', 'open3d', 'pycolmap', 'ray'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def recon_examples():
    from pathlib import Path

    return Path(__file__).resolve().parents[3] / "assets" / "examples"


def test_mesh_exports_from_the_pipeline(opaque_checkpoint, tmp_path):
    """--export glb,obj writes a textured mesh (from the Gaussians by default) next to the splats."""
    import trimesh

    res = reconstruct(recon_examples() / "toy_posed", _opts(opaque_checkpoint))
    assert res.up_direction() == (0.0, 0.0, 1.0)  # the example's world is z up
    from recon.export import MeshExportOptions

    files = write_outputs(res, tmp_path / "m", ["ply", "glb", "obj"], MeshExportOptions(faces=1500, texture_size=128)).files
    names = {p.name for p in files}
    assert {"mesh.glb", "mesh.obj.zip", "gaussians.ply", "report.json"} <= names
    scene = trimesh.load(tmp_path / "m" / "mesh.glb")
    assert len(scene.geometry) >= 1
    rep = json.loads((tmp_path / "m" / "report.json").read_text())
    assert 0 < rep["meshes"]["glb"]["faces"] <= 1500 * 1.05 and rep["mesh_from"] == "gaussians"
    assert isinstance(res.mesh_source(), Gaussians)


def test_mesh_from_the_triplane_sdf_on_request(tiny_checkpoint, tmp_path):
    import dataclasses

    from recon.core.types import Mesh
    from recon.export import MeshExportOptions

    res = reconstruct(recon_examples() / "toy_posed", dataclasses.replace(_opts(tiny_checkpoint), mesh_from="sdf"))
    assert res.report["mesh_from"] == "sdf" and isinstance(res.mesh_source(), Mesh)
    write_outputs(res, tmp_path / "s", ["glb"], MeshExportOptions(faces=800, texture_size=128))
    rep = json.loads((tmp_path / "s" / "report.json").read_text())
    assert rep["meshes"]["glb"]["faces"] <= 800 * 1.05 and "mesh" in rep["timings"]
    with pytest.raises(ReconError, match="mesh_from must be one of gaussians, sdf"):
        dataclasses.replace(_opts(tiny_checkpoint), mesh_from="voxels")


def test_mesh_texture_from_the_input_photos_for_posed_input(opaque_checkpoint, eval_data, tmp_path):
    """Posed input keeps its full-resolution photos (alpha as masks) for the mesh texture; --texture-from
    model uses the model's colours instead; a bad choice is one line."""
    import dataclasses

    from recon.export import MeshExportOptions

    res = reconstruct(recon_examples() / "toy_posed", _opts(opaque_checkpoint))
    assert res.report["texture_from"] == "photos" and res.photos is not None
    assert res.photos.images.shape == (4, 256, 256, 3) and res.photos.masks is None  # RGB files: no alpha
    write_outputs(res, tmp_path / "p", ["glb"], MeshExportOptions(faces=800, texture_size=128))
    assert json.loads((tmp_path / "p" / "report.json").read_text())["meshes"]["glb"]["colors_from"] == "photos"

    lego = reconstruct(eval_data / "nerf_synthetic_lego", _opts(opaque_checkpoint, views=LEGO_VIEWS[:2]))
    assert lego.photos.images.shape == (2, 800, 800, 3) and lego.photos.masks.shape == (2, 800, 800, 1)
    assert float(lego.photos.masks.min()) == 0.0 and float(lego.photos.masks.max()) == 1.0

    model = reconstruct(recon_examples() / "toy_posed", _opts(opaque_checkpoint, texture_from="model"))
    assert model.report["texture_from"] == "model" and model.photos is None
    write_outputs(model, tmp_path / "m", ["glb"], MeshExportOptions(faces=800, texture_size=128))
    assert json.loads((tmp_path / "m" / "report.json").read_text())["meshes"]["glb"]["colors_from"] == "source"
    with pytest.raises(ReconError, match="texture_from must be one of auto, photos, model"):
        dataclasses.replace(_opts(opaque_checkpoint), texture_from="paint")


def test_alpha_masks_carve_posed_input_unless_masks_are_off(eval_data, tiny_checkpoint):
    """Posed RGBA input: alpha masks carve the Gaussians (report["carved"]); ``mask="none"`` uses no
    masks at all, so nothing is carved and the carved Gaussians come back."""
    lego = eval_data / "nerf_synthetic_lego"
    carved = reconstruct(lego, _opts(tiny_checkpoint, views=LEGO_VIEWS))
    plain = reconstruct(lego, _opts(tiny_checkpoint, views=LEGO_VIEWS, mask="none"))
    assert carved.report["carved"] > 0 and plain.report["carved"] == 0
    assert len(plain.gaussians) == len(carved.gaussians) + carved.report["carved"]
    assert plain.photos.masks is None and carved.photos.masks is not None


def test_options_take_strings_and_refuse_bad_values_in_one_line():
    """Options from a command line or a JSON job: strings become the enums, a bad value is one line
    that names the option (not a flag), unknown keys are named."""
    opts = ReconstructOptions.parse({"mode": "unposed", "views": [0, "b.png"], "cameras": "cams.json"})
    assert opts.mode is Mode.UNPOSED and opts.views == (0, "b.png") and opts.cameras.name == "cams.json"
    for bad, match in (({"mode": "sideways"}, "mode must be one of auto, posed, unposed, single, got 'sideways'"),
                       ({"refine_steps": -1}, "refine_steps must be a whole number >= 0"),
                       ({"foreground_ratio": 0.0}, "foreground_ratio must be in"),
                       ({"colour": "red"}, "unknown reconstruction option")):
        with pytest.raises(ReconError, match=match) as e:
            ReconstructOptions.parse(bad)
        assert "\n" not in str(e.value) and "--" not in str(e.value)
