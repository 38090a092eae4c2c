"""Callbacks of the web app with a tiny untrained model, no browser."""

from __future__ import annotations

import json
import logging
import zipfile
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from app.callbacks import (
    SessionCache,
    cleanup_session,
    example_files,
    export_mesh,
    preview,
    render_views,
    run_reconstruction,
)
from app.mesh import MeshSettings, export_mesh_from_cache
from app.uploads import UploadError, UploadLimits, stage_uploads
from renderer.io import read_gaussians

from .conftest import EXAMPLES


def test_posed_reconstruction_outputs(reconstructor, config, posed_example):
    files, cams = posed_example
    stages = []
    out, cache = run_reconstruction(reconstructor, config, files, cams, "auto", 0.85, True, 0, None,
                                    progress=lambda f, desc: stages.append((f, desc)))
    assert out.report["mode"] == "posed" and out.report["pose_method"] == "given"
    assert out.report["inputs"] == [Path(f).name for f in files]
    assert str(config.work_root) not in json.dumps(out.report)  # no server paths in the page
    g = read_gaussians(out.ply)
    assert len(g) == out.report["gaussians"] and out.splat.stat().st_size == 32 * len(g)
    out = render_views(out, cache, config, progress=lambda f, desc: stages.append((f, desc)))
    assert out.video.stat().st_size > 0 and out.video.suffix == ".mp4"
    assert Image.open(out.plot).size[0] > 100
    fracs = [f for f, _ in stages]
    assert fracs == sorted(fracs) and fracs[-1] == 1.0 and any("turntable" in d for _, d in stages)
    assert cache.result is not None and cache.run_dir.is_dir()


def test_new_run_replaces_old_and_cleanup_removes_session(reconstructor, config, posed_example):
    files, cams = posed_example
    out1, cache = run_reconstruction(reconstructor, config, files, cams, "posed", 0.85, True, 0, None)
    first = out1.ply.parent
    out2, cache = run_reconstruction(reconstructor, config, files, cams, "posed", 0.85, True, 0, cache)
    assert not first.exists() and out2.ply.is_file()
    cleanup_session(cache)
    assert not cache.folder.exists()


def test_unposed_and_single_modes(reconstructor, config):
    imgs = sorted(str(p) for p in (EXAMPLES / "toy_unposed").glob("*.png"))
    out, _ = run_reconstruction(reconstructor, config, imgs, None, "unposed", 0.85, True, 0, None)
    assert out.report["mode"] == "unposed"
    single = [str(EXAMPLES / "toy_single" / "view_00.png")]
    out, cache = run_reconstruction(reconstructor, config, single, None, "auto", 0.8, False, 0, None)
    assert out.report["mode"] == "single"
    render_views(out, cache, config)


def test_preview_overlays_mask_for_single_image(config):
    single = [str(EXAMPLES / "toy_single" / "view_00.png")]
    items, note, cache = preview(single, None, "auto", True, None, config)
    assert len(items) == 1 and "mask" in items[0][1] and "single-image" in note
    plain, _, _ = preview(single, None, "auto", False, cache, config)
    assert not np.array_equal(items[0][0], plain[0][0])  # background tinted only when removed
    many, note, _ = preview(sorted(str(p) for p in (EXAMPLES / "toy_posed").glob("*.png")), None, "auto", True,
                            cache, config)
    assert len(many) == 4 and "mask" not in many[0][1]
    assert preview(None, None, "auto", True, None, config)[0] == []


@pytest.mark.parametrize("content, match", [
    (b"this is not an image", "not a JPEG, PNG"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not a JPEG, PNG"),
])
def test_corrupt_upload_is_a_readable_error(reconstructor, config, tmp_path, content, match):
    bad = tmp_path / "bad.png"
    bad.write_bytes(content)
    with pytest.raises(gr.Error, match=match):
        run_reconstruction(reconstructor, config, [str(bad)], None, "auto", 0.85, True, 0, None)
    with pytest.raises(gr.Error, match=match):
        preview([str(bad)], None, "auto", True, None, config)


def test_bad_inputs_give_messages(reconstructor, config, posed_example, tmp_path):
    files, cams = posed_example
    with pytest.raises(gr.Error, match="no photos uploaded"):
        run_reconstruction(reconstructor, config, [], None, "auto", 0.85, True, 0, None)
    with pytest.raises(gr.Error, match="needs a camera file"):
        run_reconstruction(reconstructor, config, files, None, "posed", 0.85, True, 0, None)
    with pytest.raises(gr.Error, match="Camera file"):
        run_reconstruction(reconstructor, config, [*files, cams], None, "auto", 0.85, True, 0, None)
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    with pytest.raises(gr.Error, match="only JPEG"):
        run_reconstruction(reconstructor, config, [str(txt)], None, "auto", 0.85, True, 0, None)
    with pytest.raises(gr.Error, match="refinement steps"):
        run_reconstruction(reconstructor, config, files, cams, "auto", 0.85, True, 10_000, None)
    broken = tmp_path / "cams.json"
    broken.write_text("{not json")
    with pytest.raises(gr.Error):
        run_reconstruction(reconstructor, config, files, str(broken), "auto", 0.85, True, 0, None)
    with pytest.raises(gr.Error, match="single mode takes one image"):
        run_reconstruction(reconstructor, config, files, None, "single", 0.85, True, 0, None)


def test_limits_are_enforced(tmp_path, posed_example):
    files, _ = posed_example
    with pytest.raises(UploadError, match="limit is 2"):
        stage_uploads(files, None, tmp_path / "a", UploadLimits(max_files=2))
    with pytest.raises(UploadError, match="MB"):
        stage_uploads(files, None, tmp_path / "b", UploadLimits(max_file_bytes=1000))
    with pytest.raises(UploadError, match="MP"):
        stage_uploads(files, None, tmp_path / "c", UploadLimits(max_pixels=100))


def test_file_names_are_never_paths(tmp_path, posed_example):
    files, _ = posed_example
    odd = tmp_path / "..%2F..%2Fetc passwd .png"
    odd.write_bytes(Path(files[0]).read_bytes())
    zpath = tmp_path / "photos.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        z.write(files[1], "../../escape.png")
        z.write(files[2], "/abs/view_02.png")
        z.write(files[3], "sub/readme.txt")
    staged = stage_uploads([str(odd), str(zpath)], None, tmp_path / "s", UploadLimits())
    assert len(staged.images) == 3
    for p in staged.images:
        assert p.parent == tmp_path / "s"
    assert {p.name for p in staged.images} >= {"escape.png", "view_02.png"}
    assert not (tmp_path / "escape.png").exists()


def test_mesh_export_before_any_reconstruction_is_a_visible_error(config):
    cache = SessionCache.new(config)
    with pytest.raises(gr.Error, match="Reconstruct first"):
        export_mesh_from_cache(cache, MeshSettings())


def test_mesh_reexport_uses_the_cache_and_never_runs_the_network(reconstructor, config, posed_example, caplog):
    import torch
    import trimesh

    from recon.core.types import Mesh

    files, cams = posed_example
    with caplog.at_level(logging.INFO, logger="recon.app"):
        _, cache = run_reconstruction(reconstructor, config, files, cams, "posed", 0.85, True, 0, None)
        # stand-in for the extracted surface (the TSDF of an untrained model takes half a minute)
        sphere = trimesh.creation.icosphere(subdivisions=4)  # 5120 faces
        cache.surface = (Mesh(torch.tensor(sphere.vertices, dtype=torch.float32), torch.tensor(sphere.faces)),
                         lambda p: np.full((len(p), 3), 0.5))
        steps = list(export_mesh(cache, 4000, 256, "+Y (y up)"))
        assert len(steps) == 2 and len(steps[0][1]) == 1 and steps[0][0].endswith("mesh.glb")
        assert "OBJ zip on its way" in steps[0][2]
        glb, downloads, note = steps[-1]
        assert [Path(d).name for d in downloads] == ["mesh.glb", "mesh.obj.zip"]
        assert "network runs in this session: 1" in note and "4000 faces" in note
        big = trimesh.load(glb, force="mesh")
        assert len(big.faces) == 4000
        small_glb, _, note = list(export_mesh(cache, 1000, 256, "+Y (y up)"))[-1]
        small = trimesh.load(small_glb, force="mesh")
        assert 900 <= len(small.faces) <= 1000 and small_glb != glb and Path(glb).is_file()
        again = list(export_mesh(cache, 4000, 256, "+Y (y up)"))[-1]
        assert again[0] == glb and "GLB from the cache, OBJ zip from the cache" in again[2]
        with pytest.raises(gr.Error, match="face budget"):
            next(export_mesh(cache, 10, 256, "+Y (y up)"))
        cache.surface = (Mesh(torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.long)), cache.surface[1])
        with pytest.raises(gr.Error, match="Mesh export failed: no surface"):  # e.g. no opaque Gaussians
            next(export_mesh(cache, 2000, 256, "+Y (y up)"))
    assert cache.network_runs == 1
    runs = [r.getMessage() for r in caplog.records if r.getMessage().startswith("network run")]
    exports = [r.getMessage() for r in caplog.records if r.getMessage().startswith("mesh export")]
    assert not any(r.getMessage().startswith("surface extracted") for r in caplog.records)  # stand-in surface
    assert len(runs) == 1 and len(exports) == 6 and all("network runs so far: 1" in m for m in exports)


def test_examples_exist():
    for name, mode in (("toy_posed", "posed"), ("toy_unposed", "unposed"), ("toy_single", "single")):
        images, cams, got = example_files(EXAMPLES, name)
        assert images and got == mode and (cams is not None) == (mode == "posed")


def test_build_app_binds_the_injected_model(reconstructor, config):
    from app.main import build_app

    demo = build_app(reconstructor, config)
    assert isinstance(demo, gr.Blocks)
    ids = {getattr(b, "elem_id", None) for b in demo.blocks.values()}
    assert {"photos", "camera_file", "reconstruct", "viewer", "turntable", "downloads", "mesh_section"} <= ids
