"""``export_mesh`` end to end: files, glTF conventions, the face budget, textures and validation."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import trimesh

from recon.core.errors import ReconError
from recon.export import MeshExportOptions, TsdfOptions, export_mesh, files, up_to_y_rotation
from renderer.errors import FileFormatError
from tests.recon.export.conftest import icosphere, sphere_gaussians

TALL = (0.2, 0.3, 1.0)  # extents along world x, y, z: tall along z (our data's up)


def _texel(texture, uv):
    """Colour of the texel under OBJ-convention ``uv [P, 2]`` (as trimesh loads them) in a PIL image."""
    img = np.asarray(texture.convert("RGB"))
    h, w = img.shape[:2]
    col = np.clip((uv[:, 0] * w).astype(int), 0, w - 1)
    row = np.clip(((1 - uv[:, 1]) * h).astype(int), 0, h - 1)
    return img[row, col]


@pytest.mark.parametrize("up,expected", [((0, 0, 1), [[1, 0, 0], [0, 0, 1], [0, -1, 0]]), ((0, 1, 0), np.eye(3))])
def test_up_rotation_is_proper_and_maps_up_to_y(up, expected):
    R = up_to_y_rotation(up)
    assert np.allclose(R, expected)
    rng = np.random.default_rng(0)
    for u in [*rng.normal(size=(5, 3)), (0, -1, 0)]:
        R = up_to_y_rotation(u)
        assert np.isclose(np.linalg.det(R), 1) and np.allclose(R @ R.T, np.eye(3))
        assert np.allclose(R @ (np.asarray(u) / np.linalg.norm(u)), [0, 1, 0])


def test_glb_is_valid_y_up_scaled_on_budget_and_textured(tmp_path, gltf_validator):
    import open3d as o3d

    mesh = icosphere(0.5, subdivisions=4, extents=TALL)  # 5120 faces, red above z = 0, blue below
    path = tmp_path / "tall.glb"
    opts = MeshExportOptions(faces=1000, texture_size=256, scale=2.0, pivot="bottom_center")
    report = export_mesh(mesh, path, opts)
    assert report["files"] == [str(path)] and report["topology"]["levels"][0]["watertight"]

    result = gltf_validator(path)
    assert result["errors"] == 0, result["messages"]

    tm = trimesh.load(path, force="mesh")
    assert abs(len(tm.faces) - 1000) <= 50
    lo, hi = tm.bounds
    assert np.allclose(hi - lo, 2.0 * np.array([TALL[0], TALL[2], TALL[1]]), rtol=0.03)  # +Y up, x2 scale
    assert abs(lo[1]) < 1e-5 and np.allclose((lo + hi)[[0, 2]] / 2, 0, atol=1e-5)  # pivot at bottom centre
    assert tm.visual.uv is not None and tm.visual.uv.shape == (len(tm.vertices), 2)
    material = tm.visual.material
    assert material.baseColorTexture.size == (256, 256)
    assert material.metallicFactor == 0 and 0.5 <= material.roughnessFactor <= 1
    colours = _texel(material.baseColorTexture, tm.visual.uv)
    top, bottom = tm.vertices[:, 1] > 1.3, tm.vertices[:, 1] < 0.7  # world z above / below 0
    assert (colours[top, 0] > 200).mean() > 0.95 and (colours[bottom, 2] > 200).mean() > 0.95

    o3 = o3d.io.read_triangle_mesh(str(path))
    assert abs(len(o3.triangles) - 1000) <= 50


def test_lods_and_vertex_colour_mode(tmp_path, gltf_validator):
    mesh = icosphere(0.5, subdivisions=4)
    path = tmp_path / "lods.glb"
    report = export_mesh(mesh, path, MeshExportOptions(faces=2000, lods=(0.25, 0.06), vertex_colors=True))
    assert report["files"] == [str(path), str(tmp_path / "lods_lod1.glb"), str(tmp_path / "lods_lod2.glb")]
    budgets = [2000, 500, 120]
    for file, budget in zip(report["files"], budgets):
        assert gltf_validator(file)["errors"] == 0
        tm = trimesh.load(file, force="mesh")
        assert abs(len(tm.faces) - budget) <= 0.05 * budget
        assert tm.visual.kind == "vertex"
        rgb = np.asarray(tm.visual.vertex_colors)[:, :3]
        top = tm.vertices[:, 1] > 0.8
        assert (rgb[top, 0] > 200).all()


def test_obj_zip_loose_obj_ply_and_stl(tmp_path):
    mesh = icosphere(0.5, subdivisions=3)
    opts = MeshExportOptions(faces=600, texture_size=128, pivot="center")
    export_mesh(mesh, tmp_path / "m.obj.zip", opts)
    with zipfile.ZipFile(tmp_path / "m.obj.zip") as z:
        names = set(z.namelist())
        assert {"m.obj", "m.mtl"} <= names and any(n.endswith(".png") for n in names)
        z.extractall(tmp_path / "unzipped")
    tm = trimesh.load(tmp_path / "unzipped" / "m.obj", force="mesh")
    assert abs(len(tm.faces) - 600) <= 30 and tm.visual.uv is not None
    assert tm.visual.material.image.size == (128, 128)
    assert np.allclose(tm.bounds.mean(0), 0, atol=1e-3)  # centre pivot

    files = export_mesh(mesh, tmp_path / "loose.obj", opts)["files"]
    assert files[-1].endswith("loose.obj") and any(f.endswith(".png") for f in files)

    export_mesh(mesh, tmp_path / "m.ply", opts)
    ply = trimesh.load(tmp_path / "m.ply", force="mesh")
    assert abs(len(ply.faces) - 600) <= 30 and ply.visual.kind == "vertex"
    export_mesh(mesh, tmp_path / "m.stl", opts)
    stl = trimesh.load(tmp_path / "m.stl", force="mesh")
    assert abs(len(stl.faces) - 600) <= 30 and stl.is_watertight


@pytest.mark.slow
def test_gaussians_export_to_a_valid_textured_glb(tmp_path, gltf_validator):
    g = sphere_gaussians(2000, 0.5, center=(0.0, 0.0, 0.5))
    opts = MeshExportOptions(faces=800, texture_size=128, tsdf=TsdfOptions(views=24, resolution=48))
    report = export_mesh(g, tmp_path / "splat.glb", opts)
    assert gltf_validator(tmp_path / "splat.glb")["errors"] == 0
    assert abs(report["faces"] - 800) <= 40 and report["uv_coverage"] > 0.2
    tm = trimesh.load(tmp_path / "splat.glb", force="mesh")
    assert np.allclose(tm.bounds[1] - tm.bounds[0], 1.0, atol=0.1)  # a ~unit-diameter ball
    colours = _texel(tm.visual.material.baseColorTexture, tm.visual.uv)
    top = tm.vertices[:, 1] > 0.9  # world +z pole: the Gaussians' normal colour is (0.5, 0.5, 1)
    assert top.any() and colours[top, 2].mean() > 200 and colours[top, 0].mean() < 170


def test_bad_paths_fail_cleanly_and_writes_are_atomic(tmp_path, monkeypatch):
    mesh = icosphere(0.5, subdivisions=2)
    with pytest.raises(ReconError, match="unknown mesh format"):
        export_mesh(mesh, tmp_path / "m.fbx")
    with pytest.raises(FileFormatError):
        export_mesh(mesh, tmp_path / "missing" / "m.glb", MeshExportOptions(faces=100, texture_size=64))
    target = tmp_path / "keep.glb"
    target.write_bytes(b"old")

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(files, "export_glb", boom)  # the name recon.export.files writes GLBs with
    with pytest.raises(RuntimeError):
        export_mesh(mesh, target, MeshExportOptions(faces=100, texture_size=64))
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.glb"]


def test_triplane_mesh_of_the_reconstructor_exports_in_world_units(tmp_path, gltf_validator):
    """Path (a) end to end: the (untrained, sphere-prior) triplane head's world-frame mesh -> GLB."""
    import torch

    from recon.core.types import Views
    from recon.inference import Reconstructor
    from recon.models import ReconModel, preset
    from renderer import Cameras

    torch.manual_seed(0)
    cams = Cameras.orbit(3, radius=5.0, center=(2.0, -1.0, 0.5), width=48, height=40)
    images = torch.rand(3, 40, 48, 3, generator=torch.Generator().manual_seed(0))
    mesh = Reconstructor(ReconModel(preset("tiny")).eval(), dtype=torch.float32).mesh(Views(images, cams), resolution=32)
    report = export_mesh(mesh, tmp_path / "triplane.glb", MeshExportOptions(faces=500, texture_size=64, pivot="none"))
    assert gltf_validator(tmp_path / "triplane.glb")["errors"] == 0
    tm = trimesh.load(tmp_path / "triplane.glb", force="mesh")
    assert abs(len(tm.faces) - 500) <= 25 and report["topology"]["levels"][0]["watertight"]
    world_center = np.array([2.0, -1.0, 0.5])
    assert np.allclose(tm.bounds.mean(0), up_to_y_rotation((0, 0, 1)) @ world_center, atol=0.3)  # pivot "none": world origin kept


def test_several_formats_share_one_surface_and_texture(tmp_path):
    """A list of paths writes every format from one clean-up, decimation, UV layout and bake."""
    import trimesh

    mesh = icosphere(0.5, subdivisions=4)
    opts = MeshExportOptions(faces=1000, texture_size=128)
    paths = [tmp_path / "m.glb", tmp_path / "m.obj.zip", tmp_path / "m.ply", tmp_path / "m.stl"]
    rep = export_mesh(mesh, paths, opts)
    assert rep["format"] == ["glb", "obj", "ply", "stl"] and rep["colors_from"] == "source"
    assert {Path(f).name for f in rep["files"]} == {"m.glb", "m.obj.zip", "m.ply", "m.stl"}
    single = export_mesh(mesh, tmp_path / "single.glb", opts)
    glb = trimesh.load(paths[0], force="mesh")
    one = trimesh.load(tmp_path / "single.glb", force="mesh")
    # the same mesh and texture as a GLB exported alone
    assert np.allclose(np.sort(glb.vertices, axis=0), np.sort(one.vertices, axis=0), atol=1e-5)
    assert np.array_equal(np.asarray(glb.visual.material.baseColorTexture), np.asarray(one.visual.material.baseColorTexture))
    ply, stl = trimesh.load(paths[2]), trimesh.load(paths[3])
    assert len(ply.faces) == len(stl.faces) == len(glb.faces) == single["faces"]
    assert ply.is_watertight and stl.is_watertight
    with zipfile.ZipFile(paths[1]) as z:
        assert {Path(n).suffix for n in z.namelist()} == {".obj", ".mtl", ".png"}
