"""bench.refine_init: every start is scored under the protocol at the same budget, the model-K start
really has K Gaussians, and the JSON is written whole."""

from __future__ import annotations

import json

from bench.refine_init import RefineFromModel, main
from recon.eval.protocols import get_protocol


def test_rows_for_every_start_and_json_is_written(tmp_path, capsys):
    out = tmp_path / "sub" / "refine.json"
    main(["--protocol", "synthetic-val", "--limit", "1", "--budget", "5", "--keep", "500", "--json", str(out)])
    r = json.loads(out.read_text())
    assert set(r["rows"]) == {"scratch", "model", "model-500"} and r["items"] == 1 and r["budget_s"] == 5.0
    for name, row in r["rows"].items():
        assert row["iterations"] >= 1 and 5.0 < row["psnr"] < 60.0, (name, row)
        # the model's time counts against the budget (no upper bound: a step's time depends on the load)
        assert row["seconds_method"] >= 5.0, (name, row)
    assert not list(tmp_path.glob("sub/.*"))
    assert "model-500" in capsys.readouterr().out


def test_model_k_starts_from_k_model_gaussians():
    item = next(iter(get_protocol("synthetic-val").items(limit=1)))
    inputs = item[1]
    full = RefineFromModel(0.0)  # a spent budget: the start comes back unoptimised
    sampled = RefineFromModel(0.0, keep=300)
    a, b = full.reconstruct(inputs), sampled.reconstruct(inputs)
    assert a.info["iterations"] == b.info["iterations"] == 0
    assert b.info["start_gaussians"] == 300 and a.info["start_gaussians"] == a.info["model_gaussians"] > 300
    assert len(b.gaussians) <= 300 and b.info["model_gaussians"] == a.info["model_gaussians"]
