"""Datasets for the trainer: endless procedural items and real posed-image collections.

Every dataset is map-style (``item = dataset[i]``) and deterministic: the same index gives the same
item, so ``torch.utils.data.DataLoader`` workers and ``DistributedSampler`` ranks can split the
index space without coordinating random state. Items are ``recon.core.types.Item``.

Procedural seeds: training uses seeds ``seed_offset + i`` with ``seed_offset + len < 10_000_000``;
evaluation protocols use seeds from 10_000_000 up, so train and validation never share an object.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from recon.core.errors import ReconError
from recon.core.types import Item, Views
from recon.data.procedural.item import make_item
from recon.io import CameraSet, read_cameras
from recon.io.images import load_image, resize_image

TRAIN_SEED_LIMIT = 10_000_000


@dataclass
class ProceduralConfig:
    """What each procedural item holds."""

    n_inputs: int = 4
    n_targets: int = 4
    size: int = 256  # square images, pixels
    scene_every: int = 5  # every k-th seed is a full-frame scene instead of a masked object (0 = never)
    sdf_samples: int = 0  # exact SDF samples per item (for the triplane head)
    seed_offset: int = 0
    length: int = 1_000_000


class ProceduralDataset(torch.utils.data.Dataset):
    """Procedural objects and scenes rendered on the fly; item ``i`` uses seed ``seed_offset + i``."""

    def __init__(self, config: ProceduralConfig | None = None, device: str | torch.device = "cpu"):
        self.config = config or ProceduralConfig()
        if self.config.seed_offset + self.config.length > TRAIN_SEED_LIMIT:
            raise ReconError(f"training seeds must stay below {TRAIN_SEED_LIMIT} (they would overlap validation)")
        self.device = device

    def __len__(self) -> int:
        return self.config.length

    def __getitem__(self, index: int) -> Item:
        if not 0 <= index < len(self):
            raise IndexError(index)
        c = self.config
        seed = c.seed_offset + index
        scene = c.scene_every > 0 and seed % c.scene_every == c.scene_every - 1
        return make_item(seed, c.n_inputs, c.n_targets, c.size, scene=scene, sdf_samples=c.sdf_samples, device=self.device)


def collate_items(items: list[Item]) -> list[Item]:
    """DataLoader ``collate_fn``: items stay typed; the trainer stacks what it needs."""
    return items


@dataclass
class PosedImagesConfig:
    n_inputs: int = 4
    n_targets: int = 4
    size: int | None = 256  # resize to size x size-ish (longer side = size, aspect kept); None = as stored
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)  # composited behind RGBA images
    items_per_collection: int = 100  # view subsets drawn per collection (the dataset's length per folder)


class PosedImagesDataset(torch.utils.data.Dataset):
    """Real posed photos in the ``Item`` format: random input/target view subsets per index.

    ``collections`` are camera sources that ``recon.io.read_cameras`` understands: NeRF/Blender
    folders or transforms files, COLMAP dataset folders, our cameras.json folders. Item ``i`` takes
    collection ``i // items_per_collection`` and draws disjoint input and target views with a
    generator seeded by ``i``. RGBA images give masks and are composited over ``background``.
    """

    def __init__(self, collections: list[str | Path], config: PosedImagesConfig | None = None):
        self.config = config or PosedImagesConfig()
        self.sets: list[CameraSet] = [read_cameras(c) for c in collections]
        need = self.config.n_inputs + self.config.n_targets
        for path, s in zip(collections, self.sets):
            if len(s) < need:
                raise ReconError(f"{path}: {len(s)} views, but items need {need} (inputs + targets)")

    @classmethod
    def objaverse_style(cls, root: str | Path, config: PosedImagesConfig | None = None) -> PosedImagesDataset:
        """One object per sub-folder of ``root``, each with images and a camera file (cameras.json or
        transforms.json): the layout of common Objaverse render dumps."""
        root = Path(root)
        if not root.is_dir():
            raise ReconError(f"{root}: not a folder")
        folders = sorted(p for p in root.iterdir() if p.is_dir())
        if not folders:
            raise ReconError(f"{root}: no object folders inside")
        return cls(folders, config)

    def __len__(self) -> int:
        return len(self.sets) * self.config.items_per_collection

    def _views(self, s: CameraSet, idx: list[int]) -> Views:
        c = self.config
        cams = s.cameras[idx]
        w, h = cams.width, cams.height
        if c.size is not None:
            f = c.size / max(w, h)
            w, h = max(1, round(w * f)), max(1, round(h * f))
            cams = cams.resize(w, h)
        images, masks = [], []
        bg = torch.tensor(c.background)
        for i in idx:
            rgb, alpha = load_image(s.image_paths[i])
            if (rgb.shape[1], rgb.shape[0]) != (s.cameras.width, s.cameras.height):
                raise ReconError(
                    f"{s.image_paths[i]}: image is {rgb.shape[1]}x{rgb.shape[0]} but its camera says "
                    f"{s.cameras.width}x{s.cameras.height}"
                )
            if alpha is not None:
                rgb = rgb * alpha + bg * (1 - alpha)
                masks.append(resize_image(alpha, w, h))
            images.append(resize_image(rgb, w, h))
        has_masks = len(masks) == len(idx)
        return Views(torch.stack(images), cams, torch.stack(masks) if has_masks else None,
                     names=[s.image_paths[i].name for i in idx])

    def __getitem__(self, index: int) -> Item:
        if not 0 <= index < len(self):
            raise IndexError(index)
        c = self.config
        s = self.sets[index // c.items_per_collection]
        gen = torch.Generator().manual_seed(index)
        perm = torch.randperm(len(s), generator=gen).tolist()
        inputs, targets = perm[: c.n_inputs], perm[c.n_inputs : c.n_inputs + c.n_targets]
        return Item(self._views(s, inputs), self._views(s, targets),
                    meta={"collection": str(s.path), "index": index, "source": s.source})
