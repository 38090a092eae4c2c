"""``TrainConfig`` parsing and validation, the learning-rate schedule, and the step plan."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest

from recon.core.errors import ReconError
from recon.train.config import DataConfig, TrainConfig, cosine_lr, step_plan
from recon.train.losses import LossWeights
from tests.recon.train.common import config_dict


def test_from_dict_types_nested_configs():
    cfg = TrainConfig.from_dict(config_dict("runs/x", loss={"rgb_ssim": 0.0}))
    assert isinstance(cfg.data, DataConfig) and cfg.data.n_inputs == (2, 3) and cfg.data.length is None
    assert isinstance(cfg.loss, LossWeights) and cfg.loss.rgb_ssim == 0.0 and cfg.loss.rgb_mse == 1.0
    assert cfg.model_config().image_size == 32


@pytest.mark.parametrize("bad, message", [
    ({"bogus": 1}, "unknown training config keys: ['bogus']"),
    ({"data": {"cache": None, "n_views": 3}}, "unknown data keys: ['n_views']"),
    ({"loss": {"rgb_l1": 1.0}}, "unknown loss keys: ['rgb_l1']"),
    ({"model": "huge"}, "unknown model preset"),
    ({"model": {"backbone": {"dim": 32, "width": 2}}}, "unknown keys in model config 'backbone'"),
    ({"grad_accum": 3, "batch_size": 2}, "grad_accum must be in 1..batch_size"),
    ({"data": {"cache": None, "n_inputs": []}}, "data.n_inputs"),
    ({"steps": "many"}, "bad training config"),
    ({"data": {"cache": None, "length": 0}}, "data.length"),
    ({"data": {"cache": None, "render_device": "gpu"}}, "data.render_device"),
    ({"render_backend": "cuda"}, "render_backend must be"),
])
def test_from_dict_rejects_unknown_keys_and_bad_values(bad, message):
    with pytest.raises(ReconError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
        TrainConfig.from_dict({**config_dict("runs/x"), **bad})


def test_from_dict_rejects_non_objects():
    with pytest.raises(ReconError, match="JSON object"):
        TrainConfig.from_dict([1, 2])
    with pytest.raises(ReconError, match="data must be a JSON object"):
        TrainConfig.from_dict({"data": [2, 3]})


def test_load_names_the_file(tmp_path):
    with pytest.raises(ReconError, match="no such training config"):
        TrainConfig.load(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text('{"model": "tiny",')
    with pytest.raises(ReconError, match="broken.json: not valid JSON"):
        TrainConfig.load(tmp_path / "broken.json")
    (tmp_path / "ok.json").write_text(json.dumps(config_dict(tmp_path / "run")))
    assert TrainConfig.load(tmp_path / "ok.json").out_dir == str(tmp_path / "run")


def test_cosine_lr_warmup_and_decay():
    base, total, warm = 1e-3, 110, 10
    # Linear warm-up: step s (0-based) trains at base * (s + 1) / warmup, reaching base at the last one.
    assert [cosine_lr(s, total, warm, base) for s in (0, 4, 9)] == pytest.approx([1e-4, 5e-4, 1e-3])
    # Cosine from base (step = warmup) to 5% of base (step = total), held there after.
    assert cosine_lr(10, total, warm, base) == pytest.approx(base)
    assert cosine_lr(60, total, warm, base) == pytest.approx(base * (0.05 + 0.95 * 0.5))
    assert cosine_lr(35, total, warm, base) == pytest.approx(base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi / 4))))
    assert cosine_lr(110, total, warm, base) == pytest.approx(0.05 * base)
    assert cosine_lr(500, total, warm, base) == pytest.approx(0.05 * base)
    lrs = [cosine_lr(s, total, warm, base) for s in range(total)]
    assert all(a < b for a, b in itertools.pairwise(lrs[:warm]))  # rising to base
    assert all(a >= b for a, b in itertools.pairwise(lrs[warm - 1:]))  # then falling
    assert cosine_lr(0, 100, 0, base) == pytest.approx(base)  # no warm-up


def test_step_plan_is_deterministic_and_splits_items_across_ranks():
    cfg = TrainConfig.from_dict(config_dict("runs/x", batch_size=3, grad_accum=1, unposed_fraction=0.5,
                                            data={"cache": None, "n_inputs": [2, 3, 4], "length": 10}))
    n, world = 10, 2
    seen = []
    for step in range(5):
        plans = [step_plan(cfg, step, r, world, n) for r in range(world)]
        assert plans == [step_plan(cfg, step, r, world, n) for r in range(world)]  # pure function
        # Every rank agrees on the heads and view count, and gets its own items.
        assert len({(p.unposed, p.n_inputs) for p in plans}) == 1
        samples = [set(zip(p.indices, p.epochs)) for p in plans]  # (item, epoch): an item once per epoch
        assert samples[0].isdisjoint(samples[1])
        for p in plans:
            assert len(p.indices) == 3 and all(0 <= i < n for i in p.indices)
            seen += list(zip(p.indices, p.epochs))
    # The global stream visits every item once per epoch: 30 samples = 3 epochs of 10.
    for e in range(3):
        assert sorted(i for i, ep in seen if ep == e) == list(range(n))
    assert {step_plan(cfg, s, 0, 1, n).unposed for s in range(20)} == {True, False}
    assert {step_plan(cfg, s, 0, 1, n).n_inputs for s in range(20)} == {2, 3, 4}


def test_every_shipped_config_loads():
    """Every JSON in configs/ is a valid training config (a typo would only show on a GPU lease)."""
    paths = sorted((Path(__file__).resolve().parents[3] / "configs").glob("*.json"))
    assert len(paths) >= 4
    for p in paths:
        cfg = TrainConfig.load(p)
        assert cfg.steps >= 1, p
    hires = TrainConfig.load(paths[0].parent / "gpu_small_hires.json")
    assert hires.model_config().output_scale == 2 and hires.data.size == 256
