"""bench.model_table: model rows beside the baselines, "same items" rows over exactly the shared seeds,
and the steps a wall-clock-budget baseline bought."""

from __future__ import annotations

import json

import bench.model_table as mt


def _result(ids, psnrs, full, info=None, load=None):
    items = [{"id": i, "mean": {"psnr": p, "ssim": 0.5}, "seconds_method": 1.0, "info": dict(info or {})}
             for i, p in zip(ids, psnrs)]
    means = {"items": len(items), "psnr": sum(psnrs) / len(psnrs), "ssim": 0.5, "seconds_method": 1.0}
    out = {"items": items, "means": means, "full_protocol": full}
    if load is not None:
        out["machine"] = {"load_avg_1_5_15_min": load}
    return out


def test_table_rows(tmp_path, monkeypatch):
    results, baselines = tmp_path / "model", tmp_path / "baselines"
    results.mkdir()
    baselines.mkdir()
    monkeypatch.setattr(mt, "RESULTS", results)
    monkeypatch.setattr(mt, "BASELINES", baselines)
    (results / "lego-sparse-8__recon.json").write_text(json.dumps(_result(["lego"], [16.0], True)))
    (baselines / "lego-sparse-8__optimize-30s.json").write_text(
        json.dumps(_result(["lego"], [21.0], True, {"iterations": 333}, load=[1.2, 1.0, 0.9])))
    (results / "synthetic-val__recon.json").write_text(json.dumps(_result(["a", "b"], [10.0, 20.0], False)))
    (baselines / "synthetic-val__plane-sweep.json").write_text(json.dumps(_result(["a", "b", "c"], [5.0, 7.0, 100.0], True)))
    lines = mt.table().splitlines()
    lego = [ln for ln in lines if ln.startswith("| lego-sparse-8 |")]
    assert lego[0].startswith("| lego-sparse-8 | **recon** | 1 | 16.00 |")
    assert lego[1].startswith("| lego-sparse-8 | optimize-30s | 1 | 21.00 |")
    assert "median 333 optimisation steps per item (load average 1.2 at the end)" in lego[1]
    # the 3-item baseline over the model's 2 seeds: (5 + 7) / 2, not the 3-item mean
    same = [ln for ln in lines if "plane-sweep, same items as recon" in ln]
    assert len(same) == 1 and "| 2 | 6.00 |" in same[0]
    # a method without a step budget gets no note
    assert next(ln for ln in lines if ln.startswith("| synthetic-val | plane-sweep | 3 |")).endswith("|  |")
