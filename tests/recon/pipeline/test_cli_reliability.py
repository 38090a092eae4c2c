"""Reliability defects of issue 23 in ``reconstruct``, ``render`` and ``export``: an unwritable ``--out``
(defect 5), non-finite numbers (defects 6, 7), the printed time, non-UTF-8 names (defect 11) and
warnings for unposed results that make no sense (defect 3)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import torch

from bench.scenes import random_scene
from recon.cli import main
from recon.io import write_cameras_json
from recon.pipeline import write as write_module
from recon.pipeline.predict import LOW_POSE_CONFIDENCE, pose_warnings
from renderer import Cameras
from renderer.io import write_ply

EXAMPLES = Path(__file__).resolve().parents[3] / "assets" / "examples"


def _run(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(code: int, err: str) -> None:
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err


@pytest.fixture
def immutable_dir(tmp_path):
    """A folder with the immutable attribute (``chattr +i``): even root cannot create files in it."""
    folder = tmp_path / "immutable"
    folder.mkdir()
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(folder)], capture_output=True, check=False).returncode:
        pytest.skip("chattr +i is not permitted here")
    yield folder
    subprocess.run([chattr, "-i", str(folder)], capture_output=True, check=False)


@pytest.fixture
def scene(tmp_path) -> tuple[Path, Path]:
    """A small Gaussians file and a cameras.json of two views for ``render``/``export``."""
    ply = tmp_path / "scene" / "gaussians.ply"
    ply.parent.mkdir()
    write_ply(ply, random_scene(60))
    K = torch.tensor([[40.0, 0, 16], [0, 40, 16], [0, 0, 1]]).expand(2, 3, 3)
    c2w = torch.eye(4).repeat(2, 1, 1)
    c2w[:, 2, 3] = -3.0
    cams = write_cameras_json(tmp_path / "scene" / "cams.json", Cameras(c2w, K, 32, 32))
    return ply, cams


# ---- defect 5: an unwritable --out ----------------------------------------------------------------


@pytest.mark.parametrize("where", ["under_a_file", "immutable"])
def test_reconstruct_unwritable_out_is_refused_before_the_model(where, tiny_checkpoint, tmp_path, capsys, request):
    if where == "under_a_file":
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "out"
    else:
        out = request.getfixturevalue("immutable_dir") / "out"
    code, _, err = _run(["reconstruct", EXAMPLES / "toy_posed", "--out", out, "--checkpoint", tiny_checkpoint,
                         "--device", "cpu"], capsys)
    _one_line_error(code, err)
    assert "--out" in err and str(out) in err
    assert not out.exists()


@pytest.mark.parametrize("where", ["under_a_file", "immutable"])
def test_render_unwritable_out_is_refused(where, scene, tmp_path, capsys, request):
    ply, cams = scene
    if where == "under_a_file":
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "r"
    else:
        out = request.getfixturevalue("immutable_dir") / "r"
    code, _, err = _run(["render", ply, "--cameras", cams, "--out", out, "--device", "cpu"], capsys)
    _one_line_error(code, err)
    assert "--out" in err and not out.exists()


def test_an_os_error_while_writing_is_one_line(tiny_checkpoint, tmp_path, capsys, monkeypatch):
    """What the checks cannot foresee (a full disk, a file system that refuses) is caught at the output
    boundary too."""

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(write_module, "write_cameras_json", refuse)
    code, _, err = _run(["reconstruct", EXAMPLES / "toy_posed", "--out", tmp_path / "out", "--checkpoint",
                         tiny_checkpoint, "--device", "cpu"], capsys)
    _one_line_error(code, err)
    assert "cannot write the outputs: Permission denied" in err


# ---- defects 6 and 7: every float option finite and in range ------------------------------------


@pytest.mark.parametrize("up", ["nan,0,1", "inf,0,0", "0,0,0"])
def test_export_up_must_be_finite_and_non_zero(up, scene, tmp_path, capsys):
    ply, _ = scene
    code, _, err = _run(["export", ply, "--to", tmp_path / "m.glb", f"--up={up}"], capsys)
    _one_line_error(code, err)
    assert "--up" in err and not (tmp_path / "m.glb").exists()


@pytest.mark.parametrize("args", [["--foreground-ratio", "nan"], ["--foreground-ratio", "inf"],
                                  ["--foreground-ratio", "0"]])
def test_reconstruct_float_options_are_checked_at_the_boundary(args, tmp_path, capsys):
    code, _, err = _run(["reconstruct", EXAMPLES / "toy_single", "--out", tmp_path / "o", *args], capsys)
    _one_line_error(code, err)
    assert args[0] in err and "(0, 1]" in err and not (tmp_path / "o").exists()


# ---- defect 11: the printed time includes the export; names that are not UTF-8 -------------------


def test_printed_time_includes_the_export(tiny_checkpoint, tmp_path, capsys, monkeypatch):
    real = write_module.write_ply

    def slow_write_ply(*args, **kwargs):
        time.sleep(0.3)
        return real(*args, **kwargs)

    monkeypatch.setattr(write_module, "write_ply", slow_write_ply)
    out = tmp_path / "out"
    code, stdout, err = _run(["reconstruct", EXAMPLES / "toy_posed", "--out", out, "--checkpoint", tiny_checkpoint,
                              "--device", "cpu"], capsys)
    assert code == 0, err
    printed = float(re.search(r" in ([0-9.]+) s ", stdout).group(1))
    timings = json.loads((out / "report.json").read_text())["timings"]
    assert timings["export"] >= 0.3 and printed == pytest.approx(timings["total"], abs=0.01)
    assert printed >= timings["total_before_export"] + 0.29


def test_non_utf8_file_names_are_stored_as_valid_unicode(tiny_checkpoint, tmp_path, capsys):
    src = tmp_path / "imgs"
    src.mkdir()
    for i, name in enumerate([b"r_\xff.png", b"r_b.png"]):
        shutil.copy(EXAMPLES / "toy_unposed" / f"view_0{i}.png", os.fsdecode(bytes(src) + b"/" + name))
    out = tmp_path / "out"
    code, _, err = _run(["reconstruct", src, "--out", out, "--checkpoint", tiny_checkpoint, "--device", "cpu"], capsys)
    assert code == 0, err
    for name in ("cameras.json", "report.json"):
        text = (out / name).read_bytes().decode("utf-8")  # strict: valid UTF-8
        json.loads(text)
        assert "\\udc" not in text, name  # no escaped lone surrogate
    files = [f["file"] for f in json.loads((out / "cameras.json").read_text())["frames"]]
    assert sorted(files) == ["r_b.png", "r_\ufffd.png"]
    assert all(f.encode("utf-8") for f in files)


# ---- defect 3: unposed results that make no sense carry a warning -------------------------------


def test_unposed_result_with_low_confidence_warns(tiny_checkpoint, tmp_path, capsys):
    """The untrained model's pointmap gives cameras of (near) zero confidence: report.json and stderr say so."""
    out = tmp_path / "out"
    code, _, err = _run(["reconstruct", EXAMPLES / "toy_unposed", "--mode", "unposed", "--out", out,
                         "--checkpoint", tiny_checkpoint, "--device", "cpu"], capsys)
    assert code == 0, err
    rep = json.loads((out / "report.json").read_text())
    assert rep["pose_method"] == "pointmap" and rep["confidence"] < LOW_POSE_CONFIDENCE
    assert any(w.startswith("low pose confidence") for w in rep["warnings"]), rep["warnings"]
    assert "warning: low pose confidence" in err


def test_pose_warnings():
    assert pose_warnings(0.9, [True, True], ["a", "b"]) == []
    low = pose_warnings(0.1, [True, False, False], ["a", "b", "c"])
    assert len(low) == 2 and "0.10" in low[0] and "only 1 of 3 views" in low[1] and low[1].endswith("b, c")
