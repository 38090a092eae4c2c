"""``scripts/device_train.sh --collect``: the EMA export that comes back from a GPU call in 15 MiB
parts is put together again and checked (sha256 and keys) before anything uses it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from recon.inference import Reconstructor
from recon.train.config import TrainConfig
from recon.train.trainer import Trainer
from tests.recon.train.common import config_dict

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "scripts" / "device_train.sh"


def _collect(files_at: Path, dest: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), "--collect", str(files_at), str(dest)], capture_output=True,
                          text=True, timeout=300, check=False)


def test_collect_reassembles_the_split_export(tmp_path):
    export = Trainer(TrainConfig.from_dict(config_dict(tmp_path / "run")), device="cpu").export(tmp_path / "export")
    weights = (export / "model.safetensors").read_bytes()
    sent = tmp_path / "files_at" / "run"  # what a device call's $OUT/run holds
    sent.mkdir(parents=True)
    shutil.copy(export / "config.json", sent / "config.json")
    (sent / "log.jsonl").write_text('{"step": 1}\n')
    step = len(weights) // 3 + 1
    for i in range(3):
        (sent / f"model.safetensors.part{i:02d}").write_bytes(weights[i * step: (i + 1) * step])
    dest = tmp_path / "gpu" / "collected"
    r = _collect(tmp_path / "files_at", dest)
    assert r.returncode == 0, r.stderr
    assert (dest / "model.safetensors").read_bytes() == weights and (tmp_path / "gpu" / "log.jsonl").exists()
    assert Reconstructor.from_pretrained(dest).info["sha256"][:12] in r.stdout

    # A part lost on the way: the sha256 check refuses the result in one line.
    (sent / "model.safetensors.part01").unlink()
    r = _collect(tmp_path / "files_at", tmp_path / "gpu2" / "collected")
    assert r.returncode == 1 and "does not match config.json" in r.stderr and r.stderr.count("\n") == 1
    # Nothing to collect: one line, exit 2.
    r = _collect(tmp_path / "nothing", tmp_path / "gpu3")
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "is not a folder" in r.stderr


def test_rehearsal_runs_the_device_call_on_the_cpu_and_its_files_collect(tmp_path):
    """``--rehearse`` runs the GPU call's own steps on the CPU (renderer and data probes, a timed
    training run, the split export under $OUT): what comes back reassembles into a loadable
    checkpoint. This is the check that the one call a short GPU lease allows will not die of a
    script error."""
    cfg = tmp_path / "rehearse.json"
    cfg.write_text(json.dumps(config_dict(tmp_path / "run", steps=3, render_backend="torch")))
    out = tmp_path / "OUT"
    out.mkdir()
    env = {**os.environ, "OUT": str(out), "CALL_SECONDS": "3600", "PROBE_ITEMS": "1"}
    r = subprocess.run(["bash", str(SCRIPT), "--rehearse", str(cfg)], capture_output=True, text=True,
                       timeout=600, check=False, env=env, cwd=REPO)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    log = (out / "call.log").read_text()
    assert "renderer (torch) ready" in log and "on-the-fly data:" in log and "step 3 of 3" in log, log
    sent = out / "run"
    assert (sent / "config.json").exists() and (sent / "log.jsonl").exists()
    assert sorted(p.name for p in sent.glob("model.safetensors.part*")) == ["model.safetensors.part00"]
    dest = tmp_path / "collected"
    c = _collect(out, dest)
    assert c.returncode == 0, c.stderr
    rec = Reconstructor.from_pretrained(dest)
    assert json.loads((dest / "config.json").read_text())["training"]["step"] == 3
    assert rec.info["sha256"][:12] in c.stdout
