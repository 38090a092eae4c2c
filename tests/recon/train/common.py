"""Shared pieces of the trainer tests: tiny configs at 32 px, in-memory items, weight digests.

Rendering a procedural item costs about a second on the 2-core CPU, far more than a training step
of the ``tiny`` model, so the tests render each item once per process (``object_item``) and hand
the trainer a list of items (``Trainer(cfg, dataset=...)``).
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import torch

from recon.core.types import Item
from recon.data.procedural.item import make_item


def config_dict(out_dir: str | Path, **overrides) -> dict:
    """A ``TrainConfig`` dict in the style of configs/tiny.json: the ``tiny`` preset, items of 2-3
    input and 2 target views at 32x32 rendered on the fly, batches of 2 in 2 micro-batches."""
    d = {
        "model": "tiny",
        "out_dir": str(out_dir),
        "data": {"cache": None, "n_inputs": [2, 3], "n_targets": 2, "size": 32, "sdf_samples": 64},
        "steps": 50,
        "batch_size": 2,
        "grad_accum": 2,
        "lr": 1e-3,
        "warmup": 2,
        "unposed_fraction": 0.25,
        "render_views": 2,
        "render_size": 32,
        "log_every": 1,
        "eval_every": 0,
        "save_every_minutes": 60.0,
        "seed": 0,
    }
    d.update(overrides)
    return d


def write_config(path: Path, d: dict) -> Path:
    path.write_text(json.dumps(d, indent=1))
    return path


@functools.cache
def object_item(seed: int, n_inputs: int = 3, n_targets: int = 2, size: int = 32, sdf_samples: int = 64) -> Item:
    """The procedural object of ``seed`` (rendered once per process)."""
    return make_item(seed, n_inputs, n_targets, size, sdf_samples=sdf_samples)


def without_sdf(it: Item) -> Item:
    return Item(it.inputs, it.targets, None, dict(it.meta))


def mixed_items() -> list[Item]:
    """Four items: even indices carry SDF samples, odd ones are the same objects without them (as
    real data would be), so a step may run the triplane head on some micro-batches or ranks only."""
    a, b = object_item(0), object_item(1)
    return [a, without_sdf(a), b, without_sdf(b)]


def has_sdf(index: int) -> bool:
    """Whether item ``index`` of ``mixed_items()`` has SDF samples."""
    return index % 2 == 0


def state_digest(module: torch.nn.Module) -> str:
    """sha256 of every tensor of ``module.state_dict()`` (names, dtypes, shapes and bytes)."""
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        t = v.detach().cpu().contiguous()
        h.update(f"{k}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
