"""``recon`` command line: help, ``render`` end to end, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.scenes import random_scene
from recon.cli import COMMANDS, main
from recon.cli.args import parse_views
from recon.cli.examples import write_example
from recon.core.errors import ReconError
from recon.io import read_cameras, write_cameras_json
from renderer import Cameras, render
from renderer.io import read_gaussians, write_ply

REPO = Path(__file__).resolve().parents[2]


def _run(argv, capsys):
    rc = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def test_help_lists_every_command():
    proc = subprocess.run([sys.executable, "-m", "recon", "--help"], capture_output=True, text=True, cwd=REPO,
                          check=False)
    assert proc.returncode == 0
    assert all(f"    {c.name} " in proc.stdout or f"    {c.name}\n" in proc.stdout for c in COMMANDS), proc.stdout
    assert {c.name for c in COMMANDS} == {"reconstruct", "render", "batch", "export", "eval", "train", "examples"}


def test_python_m_recon_says_how_to_start_the_app(capsys):
    """The web app is the console script's command (app.cli): recon alone points there, in one line."""
    rc, out, err = _run(["app", "--port", "7861"], capsys)
    assert rc == 2 and out == "" and err.count("\n") == 1 and "recon app" in err and "python -m app" in err, err


def test_examples_command_writes_the_example_scene(tmp_path, capsys):
    rc, out, err = _run(["examples", "--out", tmp_path / "ex"], capsys)
    assert rc == 0, err
    assert sorted(p.name for p in (tmp_path / "ex").iterdir()) == ["cameras.json", "gaussians.ply"]
    assert len(read_cameras(tmp_path / "ex" / "cameras.json").cameras) == 8 and "example scene" in out


def test_parse_views():
    assert parse_views("0,3,5-7,r_26.png") == [0, 3, 5, 6, 7, "r_26.png"]
    assert parse_views(None) is None
    with pytest.raises(ReconError):
        parse_views("7-5")


def test_render_example_matches_library(tmp_path, capsys):
    EXAMPLE = tmp_path / "example"
    write_example(EXAMPLE)
    tmp_path = tmp_path / "renders"
    rc, _, err = _run(
        ["render", EXAMPLE / "gaussians.ply", "--cameras", EXAMPLE / "cameras.json", "--views", "0,3",
         "--scale", "0.25", "--out", tmp_path, "--save-depth"],
        capsys,
    )
    assert rc == 0, err
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["view_00.png", "view_03.png"]
    summary = json.loads((tmp_path / "render.json").read_text())
    assert summary["views"] == 2 and summary["width"] == 96 and summary["height"] == 72
    # The PNG is exactly the library render, quantised.
    g = read_gaussians(EXAMPLE / "gaussians.ply")
    cams = read_cameras(EXAMPLE / "cameras.json").cameras[[3]].resize(96, 72)
    ref = render(g, cams, background=(1.0, 1.0, 1.0))
    png = np.asarray(Image.open(tmp_path / "view_03.png")).astype(np.float32) / 255
    assert np.abs(png - ref.rgb[0].numpy()).max() <= 0.5 / 255 + 1e-6
    depth = np.load(tmp_path / "view_03_depth.npy")
    np.testing.assert_allclose(depth, ref.depth[0, ..., 0].numpy(), atol=1e-5)
    assert ref.alpha.mean() > 0.2  # the object is actually in view


def test_render_at_lego_cameras(tmp_path, capsys, eval_data):
    ply = tmp_path / "scene.ply"
    g = random_scene(3000, seed=1)
    g.means = g.means * 2.0
    write_ply(ply, g)
    out_dir = tmp_path / "out"
    rc, _, err = _run(
        ["render", ply, "--cameras", eval_data / "nerf_synthetic_lego" / "transforms_test_subset.json",
         "--views", "0-1", "--scale", "0.1", "--out", out_dir, "--background", "black"],
        capsys,
    )
    assert rc == 0, err
    pngs = sorted(out_dir.glob("*.png"))
    assert len(pngs) == 2 and all(p.name.startswith("r_") for p in pngs)
    img = np.asarray(Image.open(pngs[0]))
    assert img.shape == (80, 80, 3) and img.max() > 50  # Gaussians near the origin are visible


def _bad_inputs(tmp_path: Path):
    good_ply = tmp_path / "good.ply"
    write_ply(good_ply, random_scene(50))
    cams = Cameras.orbit(3, width=16, height=12)
    good_cams = tmp_path / "cameras.json"
    write_cameras_json(good_cams, cams)

    garbage = tmp_path / "garbage.ply"
    garbage.write_bytes(b"\x00\x01not a ply at all")
    truncated = tmp_path / "truncated.ply"
    truncated.write_bytes(good_ply.read_bytes()[:-100])
    malformed_json = tmp_path / "malformed.json"
    malformed_json.write_text('{"convention": "opencv", "frames": [')
    data = json.loads(good_cams.read_text())
    nan_pose = tmp_path / "nan_pose.json"
    d = json.loads(json.dumps(data))
    d["frames"][1]["c2w"][0][3] = float("nan")
    nan_pose.write_text(json.dumps(d).replace("NaN", "NaN"))
    singular = tmp_path / "singular.json"
    d = json.loads(json.dumps(data))
    d["frames"][0]["c2w"] = [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]]
    singular.write_text(json.dumps(d))
    return {
        "missing ply": (["render", tmp_path / "nope.ply", "--cameras", good_cams], "nope.ply"),
        "garbage ply": (["render", garbage, "--cameras", good_cams], "garbage.ply"),
        "truncated ply": (["render", truncated, "--cameras", good_cams], "truncated.ply"),
        "unknown suffix": (["render", good_cams, "--cameras", good_cams], "cameras.json"),
        "malformed json": (["render", good_ply, "--cameras", malformed_json], "malformed.json"),
        "nan pose": (["render", good_ply, "--cameras", nan_pose], "nan_pose.json"),
        "singular pose": (["render", good_ply, "--cameras", singular], "singular.json"),
        "view out of range": (["render", good_ply, "--cameras", good_cams, "--views", "0,7"], "7"),
        "unknown view name": (["render", good_ply, "--cameras", good_cams, "--views", "r_99.png"], "r_99.png"),
        "missing camera file": (["render", good_ply, "--cameras", tmp_path / "none.json"], "none.json"),
        "bad background": (["render", good_ply, "--cameras", good_cams, "--background", "pink"], "background"),
        "bad sh degree": (["render", good_ply, "--cameras", good_cams, "--sh-degree", "3"], "sh-degree"),
    }


@pytest.mark.parametrize(
    "case",
    ["missing ply", "garbage ply", "truncated ply", "unknown suffix", "malformed json", "nan pose", "singular pose",
     "view out of range", "unknown view name", "missing camera file", "bad background", "bad sh degree"],
)
def test_bad_input_gives_one_line_and_exit_2(case, tmp_path, capsys):
    argv, must_mention = _bad_inputs(tmp_path)[case]
    out_dir = tmp_path / "out"
    rc, _, err = _run(argv + ["--out", out_dir], capsys)
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert must_mention in lines[0], lines[0]
    assert not list(out_dir.glob("*.png")), "no output may be written for bad input"


def test_unknown_command_and_missing_arguments(capsys):
    rc, _, err = _run(["frobnicate"], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1
    rc, _, err = _run(["render", "x.ply"], capsys)
    assert rc == 2 and "--cameras" in err


def test_no_partial_png_on_failure(tmp_path, monkeypatch):
    """A failing PNG write leaves neither the target nor a temporary file behind."""
    from recon.io import images

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(images.Image.Image, "save", broken_save)
    with pytest.raises(OSError):
        images.write_png(tmp_path / "a.png", torch.zeros(4, 4, 3))
    assert list(tmp_path.iterdir()) == []
