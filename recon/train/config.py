"""Training configuration (``TrainConfig``, read from JSON), the learning-rate schedule, and the step plan.

The step plan is what makes training reproducible and resumable: which items, how many input views
and whether the step is posed are a pure function of ``(config, step, rank, world size, dataset
length)``, never of a global random state.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from recon.core.errors import ReconError
from recon.models import ModelConfig, preset
from recon.train.losses import LossWeights


@dataclass
class DataConfig:
    cache: str | None = "data_cache/train128"  # pre-rendered items (recon.data.cache); None = render on the fly
    n_inputs: tuple[int, ...] = (2, 3, 4, 4, 4, 6)  # input-view counts, one drawn per step
    n_targets: int = 4
    size: int = 128  # on-the-fly rendering only (square images, pixels)
    sdf_samples: int = 2048
    length: int | None = None  # use only the first N items (procedural seeds 0..N-1, or cached items); None = all
    # where on-the-fly items are sphere-traced: "cpu", or "train" (the training device: on a GPU the
    # trainer would otherwise wait about a second per item for the CPU)
    render_device: str = "cpu"


@dataclass
class TrainConfig:
    model: str | dict = "small"  # preset name or a ModelConfig dict
    out_dir: str = "runs/small"
    data: DataConfig = field(default_factory=DataConfig)
    steps: int = 20000  # schedule length (the run may stop earlier and resume)
    batch_size: int = 4  # items per optimizer step per rank
    grad_accum: int = 2  # micro-batches per step (1 <= grad_accum <= batch_size; sizes may differ by one)
    lr: float = 4e-4
    warmup: int = 200
    weight_decay: float = 0.05
    grad_clip: float = 1.0
    ema_decay: float = 0.998
    unposed_fraction: float = 0.2  # steps that train the pointmap head without cameras
    render_views: int = 2  # target views rendered per item for the photometric loss
    render_size: int = 64  # ... at this resolution (long side); CPU splatting dominates the step otherwise
    # renderer for the photometric loss: "auto" (gsplat on CUDA, the torch path on CPU), "torch" (the
    # pure-torch path on any device: no CUDA build, which costs minutes of a short GPU lease), "gsplat"
    render_backend: str = "auto"
    loss: LossWeights = field(default_factory=LossWeights)
    amp: bool = True  # bf16 autocast (CPU and CUDA)
    threads: int = 0  # torch CPU threads (0 = leave)
    save_every_minutes: float = 5.0
    time_limit_minutes: float = 0.0  # stop and save after this much wall time (0 = no limit)
    log_every: int = 10
    eval_every: int = 500  # steps between synthetic-val evals (0 = never)
    eval_items: int = 8
    seed: int = 0
    # a checkpoint folder (config.json + safetensors, e.g. checkpoints/default) whose weights start a
    # fresh run (model and EMA); its model config must equal this one's; ignored when resuming
    init_from: str | None = None

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Typed config from a JSON-like dict; unknown keys (also inside ``data`` and ``loss``) and
        out-of-range values raise ``ReconError``."""
        if not isinstance(d, dict):
            raise ReconError(f"a training config is a JSON object, not {type(d).__name__}")
        kw = dict(d)
        _check_keys(kw, cls, "training config")
        try:
            if "data" in kw:
                _check_keys(kw["data"], DataConfig, "data")
                kw["data"] = DataConfig(**{k: tuple(v) if k == "n_inputs" else v for k, v in kw["data"].items()})
            if "loss" in kw:
                _check_keys(kw["loss"], LossWeights, "loss")
                kw["loss"] = LossWeights(**kw["loss"])
            cfg = cls(**kw)
            cfg.validate()
        except (TypeError, ValueError) as e:
            raise ReconError(f"bad training config ({e})") from None
        return cfg

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        p = Path(path)
        try:
            d = json.loads(p.read_text())
        except FileNotFoundError:
            raise ReconError(f"{p}: no such training config") from None
        except IsADirectoryError:
            raise ReconError(f"{p}: is a folder, not a training config") from None
        except (ValueError, UnicodeDecodeError) as e:
            raise ReconError(f"{p}: not valid JSON ({e})") from None
        try:
            return cls.from_dict(d)
        except ReconError as e:
            raise ReconError(f"{p}: {e}") from None

    def validate(self) -> None:
        """Raise ``ValueError`` for values the trainer cannot run with."""
        d = self.data
        checks = [
            (len(d.n_inputs) > 0 and all(int(n) >= 1 for n in d.n_inputs), "data.n_inputs must list view counts >= 1"),
            (d.n_targets >= 1, "data.n_targets must be >= 1"),
            (d.size >= 8, "data.size must be >= 8"),
            (d.sdf_samples >= 0, "data.sdf_samples must be >= 0"),
            (d.length is None or d.length >= 1, "data.length must be >= 1 (or null for all)"),
            (d.render_device in ("cpu", "train"), 'data.render_device must be "cpu" or "train"'),
            (self.steps >= 1, "steps must be >= 1"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (1 <= self.grad_accum <= self.batch_size, "grad_accum must be in 1..batch_size"),
            (self.lr > 0, "lr must be > 0"),
            (self.warmup >= 0, "warmup must be >= 0"),
            (0 <= self.ema_decay < 1, "ema_decay must be in [0, 1)"),
            (0 <= self.unposed_fraction <= 1, "unposed_fraction must be in [0, 1]"),
            (self.render_views >= 1, "render_views must be >= 1"),
            (self.render_size >= 8, "render_size must be >= 8"),
            (self.render_backend in ("auto", "cpu", "torch", "gsplat"),
             'render_backend must be "auto", "cpu", "torch" or "gsplat"'),
            (self.save_every_minutes > 0, "save_every_minutes must be > 0"),
            (self.time_limit_minutes >= 0, "time_limit_minutes must be >= 0"),
            (self.log_every >= 1, "log_every must be >= 1"),
            (self.eval_every >= 0, "eval_every must be >= 0"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(msg)
        mc = self.model_config()  # an unknown preset or model key raises ValueError here, not mid-run
        if d.size % mc.input_multiple:
            raise ValueError(f"data.size {d.size} must be a multiple of {mc.input_multiple} (the model's patch "
                             f"{mc.backbone.patch} x output_scale {mc.output_scale})")

    def model_config(self) -> ModelConfig:
        return preset(self.model) if isinstance(self.model, str) else ModelConfig.from_dict(self.model)


def _check_keys(d, cls, where: str) -> None:
    if not isinstance(d, dict):
        raise ReconError(f"{where} must be a JSON object")
    bad = set(d) - {f.name for f in dataclasses.fields(cls)}
    if bad:
        raise ReconError(f"unknown {where} keys: {sorted(bad)}")


def cosine_lr(step: int, total: int, warmup: int, base: float, final_fraction: float = 0.05) -> float:
    """Learning rate of (0-based) ``step``: linear warm-up ``base * (step + 1) / warmup`` for the first
    ``warmup`` steps, then cosine decay from ``base`` to ``final_fraction * base`` at step ``total``
    (held there beyond)."""
    if step < warmup:
        return base * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * t)))


@dataclass(frozen=True)
class StepPlan:
    """What one rank does at one step.

    Attributes:
        unposed: train the pointmap head without cameras (the same on every rank, so DDP ranks run
            the same heads).
        n_inputs: input views per item (the same on every rank).
        indices: dataset indices of this rank's ``batch_size`` items.
        epochs: the epoch of each item (a cached dataset draws its view split from it).
    """

    unposed: bool
    n_inputs: int
    indices: tuple[int, ...]
    epochs: tuple[int, ...]


@functools.lru_cache(maxsize=4)
def _epoch_permutation(seed: int, epoch: int, n: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 7_777 + epoch))


def step_plan(cfg: TrainConfig, step: int, rank: int, world: int, n: int) -> StepPlan:
    """The plan of ``step`` on ``rank`` of ``world`` over a dataset of ``n`` items.

    The global sample stream is a fresh permutation of the dataset per epoch; step ``s`` of rank
    ``r`` takes samples ``(s * world + r) * batch_size`` onwards, so ranks never share a sample and
    a resumed run (same world size) continues the stream exactly.
    """
    g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
    unposed = bool(torch.rand((), generator=g) < cfg.unposed_fraction)
    n_in = int(cfg.data.n_inputs[int(torch.randint(len(cfg.data.n_inputs), (), generator=g))])
    first = (step * world + rank) * cfg.batch_size
    idx, epochs = [], []
    for k in range(first, first + cfg.batch_size):
        e = k // n
        idx.append(int(_epoch_permutation(cfg.seed, e, n)[k % n]))
        epochs.append(e)
    return StepPlan(unposed, n_in, tuple(idx), tuple(epochs))
