"""``recon train CONFIG [--resume/--no-resume] [--max-steps N] [--out DIR]``: runs, resumes, stops
cleanly on SIGTERM, and reports bad input in one line with exit code 2."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from recon.cli import main
from recon.inference import Reconstructor
from recon.models import preset
from recon.train.state_io import latest_step, load_state
from tests.recon.train.common import config_dict, write_config

REPO = Path(__file__).resolve().parents[3]
DATA = {"cache": None, "n_inputs": [2], "n_targets": 2, "size": 32, "sdf_samples": 0, "length": 2}


def _run(argv, capsys):
    rc = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


@pytest.mark.parametrize("text, message", [
    (None, "no such training config"),
    ('{"model": "tiny",', "not valid JSON"),
    ('{"model": "tiny", "bogus": 1}', "unknown training config keys: ['bogus']"),
    ('{"model": "enormous"}', "unknown model preset 'enormous'"),
    ('{"model": "tiny", "data": {"cache": "no/such/cache"}}', "no cache shards in no/such/cache"),
])
def test_bad_config_is_one_line_exit_2(tmp_path, capsys, text, message):
    path = tmp_path / "cfg.json"
    if text is not None:
        path.write_text(text)
    rc, _, err = _run(["train", path, "--out", tmp_path / "run"], capsys)
    assert rc == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize("flag, value", [("--max-steps", "0"), ("--time-limit", "0"), ("--time-limit", "soon")])
def test_bad_max_steps_or_time_limit_is_exit_2(tmp_path, capsys, flag, value):
    rc, _, err = _run(["train", tmp_path / "cfg.json", flag, value], capsys)
    assert rc == 2 and flag in err and err.count("\n") == 1


def test_time_limit_stops_and_saves(tmp_path, capsys):
    cfg = write_config(tmp_path / "cfg.json", config_dict(tmp_path / "run", data=DATA, batch_size=1, grad_accum=1,
                                                          unposed_fraction=0.0))
    rc, stdout, err = _run(["train", cfg, "--time-limit", "0.0001"], capsys)  # 6 ms: over after the first step
    assert rc == 0 and stdout.startswith("step 1 of 50"), err
    assert latest_step(tmp_path / "run" / "checkpoints") == 1


def test_train_resumes_by_default_and_no_resume_refuses_state(tmp_path, capsys):
    cfg = write_config(tmp_path / "cfg.json", config_dict(tmp_path / "unused", data=DATA, batch_size=1, grad_accum=1,
                                                          unposed_fraction=0.0))
    out = tmp_path / "run"
    rc, stdout, err = _run(["train", cfg, "--max-steps", "1", "--out", out], capsys)
    assert rc == 0, err
    assert stdout.startswith("step 1 of 50") and latest_step(out / "checkpoints") == 1
    rc, stdout, err = _run(["train", cfg, "--max-steps", "1", "--out", out], capsys)
    assert rc == 0 and stdout.startswith("step 2 of 50"), err
    assert json.loads((out / "export" / "config.json").read_text())["training"]["step"] == 2
    rc, _, err = _run(["train", cfg, "--no-resume", "--out", out], capsys)
    assert rc == 2 and "already holds training state (step 2)" in err and err.count("\n") == 1
    assert latest_step(out / "checkpoints") == 2


def test_init_from_starts_a_fresh_run_from_a_checkpoint_folder(tmp_path, capsys):
    def weights(run):
        return Reconstructor.from_pretrained(tmp_path / run / "export").model.state_dict()

    def same(a, b):
        return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)

    base = {"data": DATA, "batch_size": 1, "grad_accum": 1, "unposed_fraction": 0.0}
    start = tmp_path / "a" / "export"
    # a: one ordinary step; b: a fresh run from a's weights; c: the same fresh run without them. A
    # learning rate of 1e-12 keeps the one step of b and c from changing anything visible.
    runs = {"a": config_dict(tmp_path / "a", **base),
            "b": config_dict(tmp_path / "b", **base, lr=1e-12, init_from=str(start)),
            "c": config_dict(tmp_path / "c", **base, lr=1e-12)}
    for run, d in runs.items():
        rc, _, err = _run(["train", write_config(tmp_path / f"{run}.json", d), "--max-steps", "1"], capsys)
        assert rc == 0, err
    assert same(weights("a"), weights("b")) and not same(weights("a"), weights("c"))
    # Resuming b goes on from its own state (init_from is for fresh runs only).
    rc, stdout, err = _run(["train", tmp_path / "b.json", "--max-steps", "1"], capsys)
    assert rc == 0 and stdout.startswith("step 2 of 50"), err
    # Weights of another model config: one line, exit 2, and no step taken.
    other = preset("tiny").to_dict()
    other["backbone"]["depth"] = 3
    d = config_dict(tmp_path / "d", **base, model=other, init_from=str(start))
    rc, _, err = _run(["train", write_config(tmp_path / "d.json", d), "--max-steps", "1"], capsys)
    assert rc == 2 and "its model config differs" in err and err.count("\n") == 1, err
    assert latest_step(tmp_path / "d" / "checkpoints") is None
    # Another output scale is the same parameters: a fresh run at 2x the working size starts from them.
    hires = preset("tiny").to_dict() | {"output_scale": 2}
    e = config_dict(tmp_path / "e", **{**base, "data": {**DATA, "size": 2 * DATA["size"]}}, lr=1e-12,
                    init_from=str(start), model=hires)
    rc, _, err = _run(["train", write_config(tmp_path / "e.json", e), "--max-steps", "1"], capsys)
    assert rc == 0, err
    assert same(weights("a"), weights("e"))
    assert Reconstructor.from_pretrained(tmp_path / "e" / "export").cfg.output_scale == 2


@pytest.mark.slow
def test_sigterm_saves_and_exits_143(tmp_path):
    """A real ``recon train`` process: SIGTERM after its first logged step makes it finish the step
    it is on, save, and exit with 128 + 15; the state loads and names a step short of the end."""
    cfg = write_config(tmp_path / "cfg.json", config_dict(tmp_path / "run", data=DATA, batch_size=1, grad_accum=1,
                                                          steps=1000))
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "recon", "train", str(cfg)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "run" / "log.jsonl"
    try:
        deadline = time.time() + 180
        while not (log.exists() and log.read_text().strip()) and proc.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    assert "stopped by SIGTERM" in stderr
    step = latest_step(tmp_path / "run" / "checkpoints")
    assert step is not None and 1 <= step < 1000
    t, meta = load_state(tmp_path / "run" / "checkpoints")
    assert meta["step"] == step and any(k.startswith("opt.") for k in t)
    assert stdout.startswith(f"step {step} of 1000")
