"""Protocols on held-out procedural data: ``synthetic-val`` (objects) and ``synthetic-val-scenes``.

Seeds: training uses procedural seeds below ``TRAIN_SEED_LIMIT`` (10,000,000; see
``recon.data.dataset``). Validation objects use ``10_000_000 + i`` for i < 200 and validation
scenes ``10_500_000 + i`` for i < 50, so validation never shares a seed with training or with
each other. Items come from ``recon.data.procedural.item.make_item`` (imported on first use).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from recon.core.types import Views
from recon.data.procedural.item import make_item, object_for_seed
from recon.data.procedural.mesh import ground_truth_mesh
from recon.eval.protocol_base import (
    EvalItem,
    EvalProtocol,
    MetricSettings,
    ProtocolOverrides,
)

TRAIN_SEED_LIMIT = 10_000_000
OBJECT_SEED_BASE, OBJECT_COUNT = 10_000_000, 200
SCENE_SEED_BASE, SCENE_COUNT = 10_500_000, 50
SYNTHETIC_SIZE = 256
N_INPUTS, N_TARGETS = 4, 4
GT_MESH_RESOLUTION = 128  # marching-cubes grid of the ground-truth mesh


class SyntheticVal(EvalProtocol):
    """Seeded procedural objects or scenes: 4 posed inputs and 4 held-out targets at 256 x 256.

    Items are ``make_item(seed, n_inputs=4, n_targets=4, size=256, scene=...)``. Objects: the method
    gets images over white and masks; the reconstruction is rendered over white. Scenes: full-frame
    images, no masks, rendered over black (the reconstruction must model the room itself). The
    method never sees depth or normals. Metrics: PSNR (whole image, and over the target mask for
    objects), SSIM, depth abs-rel / RMSE against the targets' exact z-depth where the prediction is
    opaque (alpha > 0.5, with the coverage reported), and, when the reconstruction has a mesh,
    Chamfer-L1 and F-score against ``ground_truth_mesh(object_for_seed(seed), 128)``, on 100k
    surface samples each, tau = 1% of the GT bounding-box diagonal (all in world units).
    """

    def __init__(self, scene: bool = False, data_dir: Path | None = None, overrides: ProtocolOverrides | None = None):
        super().__init__(data_dir, overrides)
        self.scene = scene
        self.name = "synthetic-val-scenes" if scene else "synthetic-val"
        self.seed_base, self.count = (SCENE_SEED_BASE, SCENE_COUNT) if scene else (OBJECT_SEED_BASE, OBJECT_COUNT)
        kind = "scenes" if scene else "objects"
        bg = "black" if scene else "white"
        self.description = f"{self.count} seeded procedural {kind}, 4 inputs + 4 targets at 256x256, {bg} background"
        self.background = (0.0, 0.0, 0.0) if scene else (1.0, 1.0, 1.0)
        self.metrics = MetricSettings(psnr_foreground=not scene, depth=True, mesh=True)

    @property
    def size(self) -> int:
        return self.overrides.scaled(SYNTHETIC_SIZE, SYNTHETIC_SIZE)[0]

    def seeds(self) -> list[int]:
        return [self.seed_base + i for i in range(self.count)]

    def _definition(self) -> dict:
        return {
            "data": "recon.data.procedural.item.make_item (generated)",
            "seeds": f"{self.seed_base} + i, i < {self.count} (training uses seeds < {TRAIN_SEED_LIMIT})",
            "inputs": N_INPUTS,
            "targets": N_TARGETS,
            "size": [self.size, self.size],
            "masks_to_method": not self.scene,
            "gt_mesh": f"ground_truth_mesh(object_for_seed(seed, scene={self.scene}), resolution={GT_MESH_RESOLUTION})",
        }

    def num_items(self) -> int:
        return self.count

    def _items(self, skip: frozenset[str] = frozenset()) -> Iterator[EvalItem]:
        for seed in self.seeds():
            if f"seed-{seed}" in skip:  # rendering an item takes seconds: skip it
                yield EvalItem(f"seed-{seed}", None, None, {})
                continue
            item = make_item(seed, n_inputs=N_INPUTS, n_targets=N_TARGETS, size=self.size, scene=self.scene, sdf_samples=0)
            full = item.inputs
            inputs = Views(full.images, full.cameras, masks=None if self.scene else full.masks, names=list(full.names))
            extras = {
                "seed": seed,
                "gt_mesh": lambda seed=seed: _gt_mesh(seed, self.scene),
                "oracle_inputs": full,
            }
            yield EvalItem(f"seed-{seed}", inputs, item.targets, extras)


def _gt_mesh(seed: int, scene: bool):
    return ground_truth_mesh(object_for_seed(seed, scene=scene), resolution=GT_MESH_RESOLUTION)
