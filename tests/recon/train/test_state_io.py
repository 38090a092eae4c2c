"""Pickle-free training state: an AdamW round trip is exact; saving is atomic and prunes old steps."""

from __future__ import annotations

import json

import pytest
import torch

from recon.core.errors import ReconError
from recon.train.state_io import (
    latest_step,
    load_optimizer,
    load_state,
    optimizer_tensors,
    save_state,
)


def _model_and_opt(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.GELU(), torch.nn.Linear(8, 2))
    decay = [p for p in model.parameters() if p.ndim == 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-2, betas=(0.9, 0.95))
    return model, opt


def _train(model, opt, steps: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(16, 4, generator=g)
        opt.zero_grad(set_to_none=True)
        model(x).square().mean().backward()
        opt.step()


def test_adamw_round_trip_is_exact(tmp_path):
    model, opt = _model_and_opt()
    _train(model, opt, 3, seed=1)
    tensors, meta = optimizer_tensors(opt)
    assert set(tensors) == {f"opt.{i}.{k}" for i in range(4) for k in ("step", "exp_avg", "exp_avg_sq")}
    json.dumps(meta)  # everything else is plain JSON
    state = {f"model.{k}": v for k, v in model.state_dict().items()} | tensors
    save_state(tmp_path / "ck", 3, state, {"optimizer": meta})

    # A fresh model and optimizer loaded from disk...
    model2, opt2 = _model_and_opt(seed=99)
    t, m = load_state(tmp_path / "ck")
    model2.load_state_dict({k[6:]: v for k, v in t.items() if k.startswith("model.")})
    load_optimizer(opt2, {k: v for k, v in t.items() if k.startswith("opt.")}, m["optimizer"])
    sd, sd2 = opt.state_dict(), opt2.state_dict()
    assert sd["param_groups"] == sd2["param_groups"]
    for pid in sd["state"]:
        for k, v in sd["state"][pid].items():
            assert torch.equal(v, sd2["state"][pid][k]), (pid, k)
    # ...takes bit-identical next steps.
    _train(model, opt, 4, seed=2)
    _train(model2, opt2, 4, seed=2)
    for p, p2 in zip(model.parameters(), model2.parameters()):
        assert torch.equal(p, p2)


def _state(v: float) -> dict:
    return {"w": torch.full((3,), v)}


def test_save_prunes_and_latest_points_at_newest(tmp_path):
    d = tmp_path / "ck"
    assert load_state(d) is None and latest_step(d) is None
    for step in (5, 10, 15):
        save_state(d, step, _state(step), {"step": step})
    assert sorted(p.name for p in d.glob("step_*")) == ["step_00000010", "step_00000015"]
    assert (d / "latest").read_text() == "step_00000015" and latest_step(d) == 15
    t, meta = load_state(d)
    assert meta["step"] == 15 and torch.equal(t["w"], torch.full((3,), 15.0))
    assert not list(d.glob(".*tmp*"))


def test_same_step_twice_and_abandoned_later_steps(tmp_path):
    d = tmp_path / "ck"
    save_state(d, 40, _state(40), {"step": 40})  # an abandoned run got further
    save_state(d, 3, _state(3), {"step": 3})
    save_state(d, 3, _state(3.5), {"step": 3})  # saved again (e.g. on a signal right after the last save)
    assert latest_step(d) == 3 and load_state(d)[0]["w"][0] == 3.5
    assert sorted(p.name for p in d.glob("step_*")) == ["step_00000003"]


def test_load_falls_back_when_latest_is_dangling(tmp_path):
    d = tmp_path / "ck"
    save_state(d, 1, _state(1), {"step": 1})
    save_state(d, 2, _state(2), {"step": 2})
    (d / "latest").write_text("step_00000007")  # as if killed between a rename and the pointer move
    assert latest_step(d) == 2 and load_state(d)[1]["step"] == 2
    (d / "step_00000002" / "state.safetensors").write_bytes(b"garbage")
    with pytest.raises(ReconError, match="unreadable training state"):
        load_state(d)
