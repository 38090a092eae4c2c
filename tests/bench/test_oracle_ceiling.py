"""bench.oracle_ceiling: the oracle rows come from the protocol runner, the others from the stored
results over exactly the same items, and the JSON is written whole."""

from __future__ import annotations

import json

from bench.oracle_ceiling import _same_items, main
from recon.eval.protocols import get_protocol
from recon.eval.reference_methods import GroundTruthDepthMethod
from recon.eval.runner import run_protocol


def test_oracle_rows_match_the_runner_and_json_is_written(tmp_path, capsys):
    out = tmp_path / "sub" / "ceiling.json"
    main(["--limit", "1", "--strides", "1,2", "--json", str(out)])
    r = json.loads(out.read_text())
    assert r["items"] == 1 and r["first_item"] == r["last_item"] == "seed-10000000"
    direct = run_protocol(get_protocol("synthetic-val"), GroundTruthDepthMethod(stride=2), limit=1)["means"]
    row = r["rows"]["gt-depth, stride 2"]
    assert abs(row["psnr"] - direct["psnr"]) < 1e-6 and row["working_px"] == 128
    # one Gaussian per second pixel: a quarter of the stride-1 count, give or take the mask's edge
    ratio = row["gaussians"] / r["rows"]["gt-depth, stride 1"]["gaussians"]
    assert 0.2 < ratio < 0.3
    assert r["rows"]["gt-depth, stride 1"]["psnr"] > row["psnr"]
    assert "recon" in r["rows"] and not list(tmp_path.glob("sub/.*"))  # no temporary file left
    assert "gt-depth, stride 2" in capsys.readouterr().out


def test_same_items_needs_every_item():
    result = {"items": [{"id": "a", "mean": {"psnr": 10.0, "ssim": 0.5}}, {"id": "b", "mean": {"psnr": 20.0, "ssim": 0.7}}]}
    assert _same_items(result, ["b"]) == {"psnr": 20.0, "psnr_fg": None, "ssim": 0.7}
    assert _same_items(result, ["a", "b"])["psnr"] == 15.0
    assert _same_items(result, ["a", "c"]) is None
