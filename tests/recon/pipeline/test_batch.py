"""Batch engine: failing jobs are recorded, kills leave nothing half-written, resume completes the rest,
parallel workers and Ray give the same outputs as one process."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recon.core.errors import ReconError
from recon.pipeline.batch import BATCH_REPORT, REPORT, BatchOptions, run_batch
from tests.recon.pipeline.batch_jobs import fake_job

JOB_FN = fake_job
REPO = Path(__file__).resolve().parents[3]


def _make_root(root: Path, values: dict[str, str]) -> Path:
    for name, v in values.items():
        (root / name).mkdir(parents=True)
        (root / name / "value.txt").write_text(v)
    return root


def _outputs(out: Path) -> dict[str, str]:
    return {p.name: (p / "result.txt").read_text() for p in sorted(out.iterdir()) if p.is_dir() and not p.name.startswith(".")}


def _check_complete(out: Path) -> None:
    """Every visible job folder is complete: report.json and result.txt present and consistent."""
    for p in out.iterdir():
        if p.is_dir() and not p.name.startswith("."):
            rep = json.loads((p / REPORT).read_text())
            assert int((p / "result.txt").read_text()) == rep["square"]


def test_failing_job_is_recorded_and_others_finish(tmp_path):
    root = _make_root(tmp_path / "root", {"a": "2", "b": "oops", "c": "3"})
    out = tmp_path / "out"
    rep = run_batch(root, out, BatchOptions(job_fn=JOB_FN))
    assert rep["ok"] == 2 and rep["failed"] == 1
    failed = [j for j in rep["jobs"] if j["status"] == "failed"]
    assert failed[0]["job"] == "b" and "not an integer" in failed[0]["error"] and failed[0]["exit_code"] == 2
    assert _outputs(out) == {"a": "4", "c": "9"}
    assert json.loads((out / BATCH_REPORT).read_text())["failed"] == 1
    _check_complete(out)


def test_kill_9_then_resume_completes_every_good_job(tmp_path):
    values = {f"job{i:02d}": str(i) for i in range(6)}
    values["job03"] = "corrupt"
    root = _make_root(tmp_path / "root", values)
    out = tmp_path / "out"
    code = ("import sys; from pathlib import Path; from recon.pipeline.batch import run_batch, BatchOptions; "
            "from tests.recon.pipeline.batch_jobs import fake_job; "
            "run_batch(Path(sys.argv[1]), Path(sys.argv[2]), BatchOptions(job_fn=fake_job, job_options={'sleep': 0.6}))")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-c", code, str(root), str(out)], env=env)
    deadline = time.time() + 60
    while time.time() < deadline:
        done = [p for p in out.glob("job*") if (p / REPORT).exists()] if out.exists() else []
        if len(done) >= 2:
            break
        time.sleep(0.05)
    time.sleep(0.3)  # land inside the next job
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    _check_complete(out)
    finished_before = {p.name for p in out.glob("job*")}
    assert 2 <= len(finished_before) < 5
    rep = run_batch(root, out, BatchOptions(job_fn=JOB_FN, resume=True))
    assert {j["job"] for j in rep["jobs"] if j["status"] == "skipped"} == finished_before
    assert {j["job"] for j in rep["jobs"] if j["status"] == "failed"} == {"job03"}
    assert _outputs(out) == {k: str(int(v) ** 2) for k, v in values.items() if v.isdigit()}
    assert not list(out.glob(".tmp-*")) and not list(out.glob(".old-*"))
    _check_complete(out)


def test_two_workers_match_one(tmp_path):
    root = _make_root(tmp_path / "root", {f"j{i}": str(i + 1) for i in range(4)})
    one = run_batch(root, tmp_path / "one", BatchOptions(job_fn=JOB_FN))
    two = run_batch(root, tmp_path / "two", BatchOptions(job_fn=JOB_FN, workers=2))
    assert one["ok"] == two["ok"] == 4
    assert _outputs(tmp_path / "one") == _outputs(tmp_path / "two")


@pytest.mark.slow
def test_ray_engine_matches_local(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    root = _make_root(tmp_path / "root", {f"j{i}": str(i + 2) for i in range(4)} | {"bad": "x"})
    local = run_batch(root, tmp_path / "local", BatchOptions(job_fn=JOB_FN))
    ray_rep = run_batch(root, tmp_path / "ray", BatchOptions(job_fn=JOB_FN, engine="ray", workers=2))
    assert local["ok"] == ray_rep["ok"] == 4 and ray_rep["failed"] == 1
    assert _outputs(tmp_path / "local") == _outputs(tmp_path / "ray")


def test_bad_batch_input(tmp_path):
    with pytest.raises(ReconError, match="not a folder"):
        run_batch(tmp_path / "missing", tmp_path / "out", BatchOptions(job_fn=JOB_FN))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReconError, match="no job sub-folders"):
        run_batch(tmp_path / "empty", tmp_path / "out", BatchOptions(job_fn=JOB_FN))
    root = _make_root(tmp_path / "root", {"a": "1"})
    (tmp_path / "file").write_text("x")
    with pytest.raises(ReconError, match="not a folder"):
        run_batch(root, tmp_path / "file", BatchOptions(job_fn=JOB_FN))


def _children(pid: int) -> list[int]:
    """Live child processes of ``pid`` that are multiprocessing workers (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmd = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z" and b"spawn_main" in cmd:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_workers_die_with_a_killed_parent(tmp_path):
    """kill -9 of the batch process leaves no worker behind (each would go on holding a model)."""
    root = _make_root(tmp_path / "root", {f"job{i}": str(i) for i in range(4)})
    code = ("import sys; from pathlib import Path; from recon.pipeline.batch import run_batch, BatchOptions; "
            "from tests.recon.pipeline.batch_jobs import fake_job; "
            "run_batch(Path(sys.argv[1]), Path(sys.argv[2]), "
            "BatchOptions(job_fn=fake_job, workers=2, job_options={'sleep': 60}))")
    proc = subprocess.Popen([sys.executable, "-c", code, str(root), str(tmp_path / "out")],
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    deadline = time.time() + 60
    while time.time() < deadline and len(_children(proc.pid)) < 2:
        time.sleep(0.1)
    workers = _children(proc.pid)
    assert len(workers) == 2
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 5
    while time.time() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.1)
    assert not [w for w in workers if _alive(w)], "workers outlived their parent"
