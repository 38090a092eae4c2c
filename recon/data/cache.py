"""A pre-rendered cache of procedural items, for training where rendering on the fly is too slow.

Sphere tracing costs about a second per object on two CPU cores, far more than a training step of
the small model, so CPU training reads items rendered ahead of time. Each cached item holds
``views`` views of one seeded object or scene (all from one rig distribution); the dataset draws a
fresh random split into input and target views every time it is read, so one rendered item serves
many different training examples.

Layout: ``ROOT/shard_XXXXXX.npz``, one shard per ``shard_size`` consecutive seeds, each written to a
temporary name and renamed (a shard on disk is always complete; generation resumes by skipping
shards that exist). Arrays per shard (I items, V views, S x S pixels):

- ``seeds [I] int64``, ``scene [I] bool``
- ``images [I, V, S, S, 3] uint8``, ``masks [I, V, S, S] uint8`` (0/255), ``depth_z [I, V, S, S] float16``
  (camera z-depth, world units, 0 = background)
- ``c2w [I, V, 4, 4] float32`` (OpenCV), ``K [I, V, 3, 3] float32`` (pixels of S x S)
- ``sdf_points [I, P, 3] float16``, ``sdf [I, P] float16``, ``sdf_colors [I, P, 3] uint8``
  (P = 0 when no samples were asked for; scenes carry zeros and ``scene`` says to ignore them)
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from recon.core.errors import ReconError
from recon.core.types import Item, SdfSamples, Views
from recon.data.dataset import TRAIN_SEED_LIMIT
from recon.data.procedural.item import make_item
from renderer import Cameras


@dataclass
class CacheSpec:
    """What ``write_cache`` renders."""

    views: int = 12  # views rendered per item
    size: int = 128  # square images, pixels
    scene_every: int = 5  # every k-th seed is a scene (0 = never)
    sdf_samples: int = 4096  # per object item (scenes get none)
    shard_size: int = 25


def _is_scene(seed: int, scene_every: int) -> bool:
    return scene_every > 0 and seed % scene_every == scene_every - 1


def _render_shard(seeds: list[int], spec: CacheSpec) -> dict[str, np.ndarray]:
    out: dict[str, list] = {k: [] for k in ("seeds", "scene", "images", "masks", "depth_z", "c2w", "K",
                                            "sdf_points", "sdf", "sdf_colors")}
    P = spec.sdf_samples
    for seed in seeds:
        scene = _is_scene(seed, spec.scene_every)
        it = make_item(seed, n_inputs=spec.views, n_targets=0, size=spec.size, scene=scene,
                       sdf_samples=0 if scene else P)
        v = it.inputs
        out["seeds"].append(seed)
        out["scene"].append(scene)
        out["images"].append((v.images.clamp(0, 1) * 255).round().to(torch.uint8).numpy())
        out["masks"].append((v.masks[..., 0].clamp(0, 1) * 255).round().to(torch.uint8).numpy())
        out["depth_z"].append(v.depth_z[..., 0].to(torch.float16).numpy())
        out["c2w"].append(v.cameras.c2w.float().numpy())
        out["K"].append(v.cameras.K.float().numpy())
        if it.sdf is not None:
            out["sdf_points"].append(it.sdf.points.to(torch.float16).numpy())
            out["sdf"].append(it.sdf.sdf.to(torch.float16).numpy())
            out["sdf_colors"].append((it.sdf.colors.clamp(0, 1) * 255).round().to(torch.uint8).numpy())
        else:
            out["sdf_points"].append(np.zeros((P, 3), np.float16))
            out["sdf"].append(np.zeros((P,), np.float16))
            out["sdf_colors"].append(np.zeros((P, 3), np.uint8))
    return {k: np.stack([np.asarray(x) for x in vals]) for k, vals in out.items()}


def write_cache(root: str | Path, start: int, count: int, spec: CacheSpec | None = None,
                worker: int = 0, workers: int = 1) -> int:
    """Render seeds ``start .. start+count-1`` into shards under ``root``; this process renders every
    ``workers``-th shard starting at ``worker``. Existing shards are skipped. Returns shards written."""
    spec = spec or CacheSpec()
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    written = 0
    n_shards = (count + spec.shard_size - 1) // spec.shard_size
    for s in range(worker, n_shards, workers):
        first = start + s * spec.shard_size
        seeds = list(range(first, min(first + spec.shard_size, start + count)))
        path = root / f"shard_{first:08d}.npz"
        if path.exists():
            continue
        arrays = _render_shard(seeds, spec)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
        written += 1
    return written


@dataclass
class CachedSplit:
    """How ``CachedDataset`` turns one cached item into an ``Item``."""

    n_inputs: int = 4
    n_targets: int = 4
    sdf_samples: int = 2048  # drawn from the cached ones (0 = none)


class CachedDataset(torch.utils.data.Dataset):
    """Items from a cache directory; reading index ``i`` with ``epoch`` e draws views and SDF samples
    with a generator seeded by (i, e), so a run is reproducible and every epoch sees new splits."""

    def __init__(self, root: str | Path, split: CachedSplit | None = None):
        self.root = Path(root)
        self.split = split or CachedSplit()
        shards = sorted(self.root.glob("shard_*.npz"))
        if not shards:
            raise ReconError(f"no cache shards in {self.root}")
        self.arrays: list[dict[str, np.ndarray]] = []
        self.index: list[tuple[int, int]] = []
        for si, path in enumerate(shards):
            with np.load(path) as z:
                self.arrays.append({k: z[k] for k in z.files})
            for j in range(len(self.arrays[-1]["seeds"])):
                self.index.append((si, j))
        self.epoch = 0
        V = self.arrays[0]["images"].shape[1]
        if self.split.n_inputs + self.split.n_targets > V:
            raise ReconError(f"cache has {V} views per item; {self.split.n_inputs}+{self.split.n_targets} asked")

    def __len__(self) -> int:
        return len(self.index)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _views(self, a: dict, j: int, idx: list[int], names: list[str]) -> Views:
        S = a["images"].shape[2]
        img = torch.from_numpy(a["images"][j, idx]).float() / 255
        mask = torch.from_numpy(a["masks"][j, idx]).float()[..., None] / 255
        depth = torch.from_numpy(a["depth_z"][j, idx].astype(np.float32))[..., None]
        cams = Cameras(torch.from_numpy(a["c2w"][j, idx]), torch.from_numpy(a["K"][j, idx]), S, S)
        return Views(img, cams, mask, depth, None, names)

    def __getitem__(self, i: int) -> Item:
        si, j = self.index[i]
        a = self.arrays[si]
        gen = torch.Generator().manual_seed(int(a["seeds"][j]) * 7919 + self.epoch * 104729 + 17)
        V = a["images"].shape[1]
        order = torch.randperm(V, generator=gen).tolist()
        n_in, n_t = self.split.n_inputs, self.split.n_targets
        inputs = self._views(a, j, order[:n_in], [f"view{k}" for k in order[:n_in]])
        targets = self._views(a, j, order[n_in:n_in + n_t], [f"view{k}" for k in order[n_in:n_in + n_t]])
        scene = bool(a["scene"][j])
        sdf = None
        P = a["sdf"].shape[1]
        if self.split.sdf_samples > 0 and P > 0 and not scene:
            pick = torch.randperm(P, generator=gen)[: self.split.sdf_samples].numpy()
            sdf = SdfSamples(torch.from_numpy(a["sdf_points"][j, pick].astype(np.float32)),
                             torch.from_numpy(a["sdf"][j, pick].astype(np.float32)),
                             torch.from_numpy(a["sdf_colors"][j, pick]).float() / 255)
        meta = {"seed": int(a["seeds"][j]), "kind": "scene" if scene else "object"}
        return Item(inputs, targets, sdf, meta)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m recon.data.cache", description="Pre-render procedural training items.")
    p.add_argument("--out", required=True)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--views", type=int, default=12)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--scene-every", type=int, default=5)
    p.add_argument("--sdf-samples", type=int, default=4096)
    p.add_argument("--shard-size", type=int, default=25)
    p.add_argument("--worker", type=int, default=0)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = leave as is)")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.start + a.count > TRAIN_SEED_LIMIT:
        raise SystemExit(f"error: training seeds must stay below {TRAIN_SEED_LIMIT}")
    spec = CacheSpec(a.views, a.size, a.scene_every, a.sdf_samples, a.shard_size)
    n = write_cache(a.out, a.start, a.count, spec, a.worker, a.workers)
    print(f"wrote {n} shards to {a.out}")


if __name__ == "__main__":
    main()
