"""``recon export``: re-mesh a saved run without the model; bad input is one line, exit 2."""

from __future__ import annotations

import pytest

from bench.scenes import random_scene
from recon.cli import main
from recon.core.errors import ReconError
from recon.pipeline.reexport import ExportRequest, export_from_run, load_photos
from renderer.io import write_ply
from tests.recon.pipeline.test_cli_reconstruct import EXAMPLES


@pytest.fixture(scope="module")
def run_dir(opaque_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "toy"
    assert main(["reconstruct", str(EXAMPLES / "toy_posed"), "--out", str(out), "--checkpoint", str(opaque_checkpoint),
                 "--device", "cpu"]) == 0
    return out


@pytest.mark.slow
def test_export_run_dir_to_glb(run_dir, tmp_path, capsys):
    import trimesh

    target = tmp_path / "toy.glb"
    code = main(["export", str(run_dir), "--to", str(target), "--faces", "800", "--texture-size", "256"])
    out, err = capsys.readouterr()
    assert code == 0, err
    mesh = trimesh.load(target, force="mesh")
    assert 0 < len(mesh.faces) <= 840 and "faces" in out


@pytest.mark.parametrize("args, message", [
    (["--to", "{tmp}/x.fbx"], "unknown mesh format"),
    (["--to", "{tmp}/missing/x.glb"], "output folder does not exist"),
    (["--to", "{tmp}/x.glb", "--lod", "2"], "--lod: fractions must be in (0, 1)"),
    (["--to", "{tmp}/x.glb", "--up", "0,1"], "--up: expected 3 numbers"),
    (["--to", "{tmp}/x.glb", "--photos", "{tmp}/nowhere"], "--photos"),
    (["--to", "{tmp}/x.glb", "--photos", "{tmp}/empty"], "no images in this folder"),
    (["--to", "{tmp}/x.glb", "--photos", "{tmp}/others"], "no image named view_00.png"),
])
def test_export_bad_input(run_dir, tmp_path, capsys, args, message):
    from PIL import Image

    (tmp_path / "empty").mkdir()
    (tmp_path / "others").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "others" / "other.png")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    code = main(["export", str(run_dir), *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not list(tmp_path.glob("x*"))


def test_export_missing_source(tmp_path, capsys):
    code = main(["export", str(tmp_path / "nope"), "--to", str(tmp_path / "m.glb")])
    assert code == 2 and "no such file or folder" in capsys.readouterr().err


def test_export_with_the_input_photos(run_dir, tmp_path):
    """--photos projects the run's input photos (matched to cameras.json by name) onto the mesh."""
    photos = load_photos(EXAMPLES / "toy_posed", run_dir / "cameras.json")
    assert photos.images.shape == (4, 256, 256, 3) and photos.names == [f"view_0{i}.png" for i in range(4)]
    rep = export_from_run(ExportRequest(source=run_dir, to=tmp_path / "p.glb", faces=800, texture_size=128,
                                        photos=EXAMPLES / "toy_posed"))
    assert rep["colors_from"] == "photos" and (tmp_path / "p.glb").is_file()


@pytest.mark.parametrize("fields, message", [
    ({"lods": (2.0,)}, "lods: fractions must be in (0, 1)"),
    ({"up": (0.0, 0.0, 0.0)}, "up must be a finite non-zero 3-vector"),
    ({"up": (float("nan"), 0.0, 1.0)}, "up must be a finite non-zero 3-vector"),
    ({"scale": 0.0}, "scale must be a finite number > 0"),
    ({"scale": float("nan")}, "scale must be a finite number > 0"),
    ({"scale": float("inf")}, "scale must be a finite number > 0"),
    ({"photos": "{tmp}/nowhere"}, "no such file or folder (photos)"),
])
def test_export_from_run_errors_name_fields_not_flags(tmp_path, fields, message):
    """``export_from_run`` is a library call: its errors name ``ExportRequest`` fields; the CLI adds flags."""
    ply = tmp_path / "gaussians.ply"
    write_ply(ply, random_scene(50))
    fields = {k: (v.replace("{tmp}", str(tmp_path)) if isinstance(v, str) else v) for k, v in fields.items()}
    with pytest.raises(ReconError) as info:
        export_from_run(ExportRequest(source=ply, to=tmp_path / "x.glb", **fields))
    assert message in str(info.value) and "--" not in str(info.value), info.value
    assert not list(tmp_path.glob("x*"))
