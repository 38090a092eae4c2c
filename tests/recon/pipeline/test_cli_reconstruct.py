"""``recon reconstruct`` and ``recon batch`` end to end (tiny untrained checkpoint): outputs, exit codes,
one-line errors with nothing written, and a batch killed with SIGKILL then resumed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recon.cli import main

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "assets" / "examples"


def _run(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_reconstruct_posed_example(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, err = _run(["reconstruct", EXAMPLES / "toy_posed", "--out", out, "--export", "ply,splat",
                              "--checkpoint", tiny_checkpoint, "--device", "cpu"], capsys)
    assert code == 0, err
    assert {p.name for p in out.iterdir()} == {"gaussians.ply", "gaussians.splat", "cameras.json", "report.json"}
    rep = json.loads((out / "report.json").read_text())
    assert rep["mode"] == "posed" and rep["pose_method"] == "given" and "Gaussians from 4 views" in stdout


def test_reconstruct_with_a_refinement_budget(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = _run(["reconstruct", EXAMPLES / "toy_posed", "--out", out, "--refine-seconds", "4",
                         "--checkpoint", tiny_checkpoint, "--device", "cpu"], capsys)
    assert code == 0, err
    r = json.loads((out / "report.json").read_text())["refine"]
    assert r["budget_seconds"] == 4.0 and r["seconds"] <= 4.4 and r["steps"] == r["history"][-1]["step"] >= 1


@pytest.mark.parametrize("case", ["bad_export", "out_is_file", "corrupt_image", "no_images", "unknown_type"])
def test_reconstruct_bad_input_exit_2_nothing_written(case, tiny_checkpoint, tmp_path, capsys):
    inputs, out = [EXAMPLES / "toy_posed"], tmp_path / "out"
    extra = []
    if case == "bad_export":
        extra = ["--export", "ply,fbx"]
    elif case == "out_is_file":
        out.write_text("keep me")
    elif case == "corrupt_image":
        src = tmp_path / "imgs"
        src.mkdir()
        data = (EXAMPLES / "toy_unposed" / "view_00.png").read_bytes()
        (src / "a.png").write_bytes(data[: len(data) // 2])
        shutil.copy(EXAMPLES / "toy_unposed" / "view_01.png", src / "b.png")
        inputs = [src]
    elif case == "no_images":
        (tmp_path / "empty").mkdir()
        inputs = [tmp_path / "empty"]
    else:
        (tmp_path / "model.obj").write_text("v 0 0 0\n")
        inputs = [tmp_path / "model.obj"]
    code, _, err = _run(["reconstruct", *inputs, "--out", out, "--checkpoint", tiny_checkpoint, "--device", "cpu",
                         *extra], capsys)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    if case == "out_is_file":
        assert out.read_text() == "keep me"
    else:
        assert not out.exists()


def _batch_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    for name in ["a_posed", "b_unposed", "c_posed", "d_unposed"]:
        shutil.copytree(EXAMPLES / ("toy_posed" if "posed" in name and "un" not in name else "toy_unposed"), root / name)
    bad = root / "e_corrupt"
    bad.mkdir()
    (bad / "view_00.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    return root


@pytest.mark.slow
def test_batch_kill_9_then_resume(tiny_checkpoint, tmp_path):
    root, out = _batch_root(tmp_path), tmp_path / "out"
    cmd = [sys.executable, "-m", "recon", "batch", str(root), "--out", str(out), "--checkpoint", str(tiny_checkpoint),
           "--device", "cpu"]
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and not (out.exists() and any((p / "report.json").exists() for p in out.glob("[a-d]_*"))):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    for p in out.iterdir():  # whatever is visible is complete
        if p.is_dir() and not p.name.startswith("."):
            assert (p / "report.json").exists() and (p / "gaussians.ply").exists() and (p / "cameras.json").exists()
    done_before = {p.name for p in out.glob("[a-e]_*")}
    assert 1 <= len(done_before) < 4
    res = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True, timeout=600, check=False)
    assert res.returncode == 1, res.stderr  # the corrupt job failed
    rep = json.loads((out / "batch_report.json").read_text())
    status = {j["job"]: j["status"] for j in rep["jobs"]}
    assert status["e_corrupt"] == "failed"
    assert {k for k, v in status.items() if v == "skipped"} == done_before
    for name in ["a_posed", "b_unposed", "c_posed", "d_unposed"]:
        assert (out / name / "report.json").exists() and (out / name / "gaussians.ply").stat().st_size > 0
    assert not list(out.glob(".tmp-*"))
    assert json.loads((out / "b_unposed" / "report.json").read_text())["mode"] == "unposed"


def test_refinement_progress_bar_only_on_a_terminal(monkeypatch):
    """The bar is drawn on a terminal only (pipes, logs and tests get no progress lines), and
    never when nothing is refined."""
    import rich.console

    from recon.cli.reconstruct import refine_progress
    from recon.pipeline.options import ReconstructOptions

    with refine_progress(ReconstructOptions(refine_seconds=5)) as cb:
        assert cb is None  # pytest's stderr is not a terminal
    monkeypatch.setattr(rich.console.Console, "is_terminal", property(lambda self: True))
    with refine_progress(ReconstructOptions()) as cb:
        assert cb is None  # no refinement, no bar
    with refine_progress(ReconstructOptions(refine_steps=3)) as cb:
        for step in (1, 2, 3):
            cb(step, 0.1 * step, 20.0 + step)
