"""``torchrun`` with two CPU processes (gloo): DDP keeps the ranks' weights identical, including on
steps whose heads differ between ranks or micro-batches (find_unused_parameters)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.recon.train.common import config_dict, has_sdf, write_config

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_torchrun_two_ranks_stay_in_sync(tmp_path):
    # seed 3: step 0 unposed (pointmap head only); step 1 posed, rank 0's items have no SDF samples
    # and rank 1's do (triplane head used on one rank only); step 2 posed, a rank's first
    # micro-batch has SDF samples and its last one (the synchronising one) has none.
    cfg = write_config(tmp_path / "cfg.json", config_dict(tmp_path / "run", seed=3, unposed_fraction=0.25,
                                                          data={"cache": None, "n_inputs": [2, 3], "n_targets": 2,
                                                                "size": 32, "sdf_samples": 64, "length": 4}))
    out = tmp_path / "ranks"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    env.pop("WORLD_SIZE", None)
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "tests.recon.train.ddp_worker", str(cfg), str(out), "--steps", "3"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    r0, r1 = (json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1))
    assert (r0["rank"], r1["rank"], r0["world"], r1["world"]) == (0, 1, 2, 2)
    assert r0["step"] == r1["step"] == 3

    # The steps covered what they are meant to cover.
    p0, p1 = r0["plans"], r1["plans"]
    for a, b in zip(p0, p1):
        assert a["unposed"] == b["unposed"] and a["n_inputs"] == b["n_inputs"]  # same heads on every rank
        assert set(a["indices"]).isdisjoint(b["indices"])  # different items per rank
    assert [a["unposed"] for a in p0] == [True, False, False]
    assert any(has_sdf(i) for i in p1[1]["indices"]) and not any(has_sdf(i) for i in p0[1]["indices"])
    assert any(pl["micro_sdf"] == [True, False] for pl in (p0[2], p1[2]))

    # Same initial weights, trained, and identical across ranks afterwards (model and EMA).
    assert r0["init"] == r1["init"]
    assert r0["final"] != r0["init"]
    assert r0["final"] == r1["final"] and r0["sum"] == r1["sum"]
    assert r0["ema"] == r1["ema"]
    # Rank 0 saved and logged; the state is the one of step 3.
    assert (tmp_path / "run" / "checkpoints" / "step_00000003" / "state.safetensors").is_file()
    logged = [json.loads(line)["step"] for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert logged == [1, 2, 3]
