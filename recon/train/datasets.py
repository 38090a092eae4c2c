"""The trainer's data: the dataset a ``DataConfig`` describes (pre-rendered cache or procedural items
rendered on the fly), a length limit over any dataset, and the items of one step plan.

Datasets are map-style, deterministic per index (and per epoch, when they have ``set_epoch``) and
identical on every rank, so that the step plan (``recon.train.config.step_plan``) alone decides what
a step sees.
"""

from __future__ import annotations

import torch

from recon.core.types import Item
from recon.data.cache import CachedDataset, CachedSplit
from recon.data.dataset import ProceduralConfig, ProceduralDataset
from recon.train.config import DataConfig, StepPlan


class FirstN(torch.utils.data.Dataset):
    """The first ``n`` items of a dataset (``set_epoch`` passes through)."""

    def __init__(self, base, n: int):
        self.base, self.n = base, min(n, len(base))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Item:
        if not 0 <= i < self.n:
            raise IndexError(i)
        return self.base[i]

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.base, "set_epoch"):
            self.base.set_epoch(epoch)


def training_dataset(d: DataConfig, device: torch.device, dataset=None):
    """``dataset`` when given (any map-style dataset of ``Item``s), else the one ``d`` describes:
    the cache at ``d.cache``, or procedural items of ``d.size`` pixels sphere-traced on the CPU (or on
    ``device`` when ``d.render_device == "train"``). Either way limited to the first ``d.length`` items."""
    if dataset is not None:
        return FirstN(dataset, d.length) if d.length is not None else dataset
    if d.cache:
        ds = CachedDataset(d.cache, CachedSplit(max(d.n_inputs), d.n_targets, d.sdf_samples))
        return FirstN(ds, d.length) if d.length is not None else ds
    pc = ProceduralConfig(max(d.n_inputs), d.n_targets, d.size, sdf_samples=d.sdf_samples)
    if d.length is not None:
        pc.length = d.length  # the procedural dataset limits itself (seeds 0..length-1)
    return ProceduralDataset(pc, device=device if d.render_device == "train" else "cpu")


def plan_items(dataset, plan: StepPlan) -> list[Item]:
    """The items ``plan`` names, in order, each cut to the plan's first ``plan.n_inputs`` input views."""
    items = []
    for i, epoch in zip(plan.indices, plan.epochs):
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        it = dataset[i]
        items.append(Item(it.inputs.select(list(range(plan.n_inputs))), it.targets, it.sdf, it.meta))
    return items
