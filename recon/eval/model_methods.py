"""The trained model as evaluation methods: ``recon`` (posed) and ``recon-unposed``.

``recon`` reconstructs from the protocol's posed inputs and also returns the triplane SDF mesh
(its time is reported in ``info["seconds_mesh"]``, not in ``seconds``, which times the Gaussians).
``recon-unposed`` ignores the input cameras (it does use the masks of protocols that give them, for the
pose recovery only): it returns Gaussians in its own frame (first camera's,
normalised scale) and its recovered cameras in ``info["c2w_pred"]``; the runner aligns them to the
protocol's cameras by a similarity before rendering targets (``unposed = True``).
"""

from __future__ import annotations

import time
from pathlib import Path

from recon.core.types import Reconstruction, Views
from recon.inference import Reconstructor

DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[2] / "checkpoints" / "default"


class _CheckpointMethod:
    """A method backed by a checkpoint folder; what a resumed eval run must match (weights, calibration)."""

    def __init__(self, checkpoint: str | Path | None = None, **kwargs):  # kwargs: Reconstructor settings

        self.rec = Reconstructor.from_pretrained(checkpoint or DEFAULT_CHECKPOINT, **kwargs)

    @property
    def weights_sha256(self) -> str:
        """The checkpoint's weights digest: a resumed run only keeps items of the same weights."""
        return self.rec.info.get("sha256")

    @property
    def scale_gain(self) -> float:
        """The checkpoint's inference calibration: a resumed run only keeps items made with the same."""
        return self.rec.scale_gain


class ModelMethod(_CheckpointMethod):
    name = "recon"

    def __init__(self, checkpoint: str | Path | None = None, mesh: bool = True, mesh_resolution: int = 96,
                 **reconstructor_kwargs):
        super().__init__(checkpoint, **reconstructor_kwargs)
        self.mesh = mesh and self.rec.cfg.triplane_head is not None
        self.mesh_resolution = mesh_resolution

    @property
    def carve_votes(self) -> int:
        """The silhouette carving setting (``Reconstructor.carve_votes``): a resumed run keeps only the same."""
        return self.rec.carve_votes

    def reconstruct(self, inputs: Views) -> Reconstruction:
        r = self.rec.reconstruct(inputs.to("cpu"))
        if self.mesh:
            t0 = time.perf_counter()
            r.mesh = self.rec.mesh(inputs.to("cpu"), resolution=self.mesh_resolution)
            r.info["seconds_mesh"] = time.perf_counter() - t0
        return r


class UnposedModelMethod(_CheckpointMethod):
    name = "recon-unposed"
    unposed = True

    def reconstruct(self, inputs: Views) -> Reconstruction:
        t0 = time.perf_counter()
        masks = None if inputs.masks is None else inputs.masks.cpu()  # protocols that give masks give them here too
        r, cams = self.rec.reconstruct_unposed(inputs.images.cpu(), masks)
        r.seconds = time.perf_counter() - t0
        r.info["c2w_pred"] = cams.c2w
        return r
