"""Reconstructor: a trained ReconModel behind the ``Method`` interface, loaded from a checkpoint folder.

A thin holder of the model, its device and dtype and the ``InferenceSettings``; the work is done by
the functions of ``recon.inference.posed``, ``unposed`` and ``mesh``. Three entry points:
``reconstruct(views)`` (posed: Gaussians in the input world frame and units),
``reconstruct_unposed(images)`` (no cameras: cameras recovered from the predicted pointmap, world
= the first camera's frame, scale = normalised pointmap units, see ``UnposedPrediction``) and
``mesh(views)`` (posed: the triplane SDF's zero level set in the input world frame).

``Reconstructor.from_pretrained(folder)`` reads a checkpoint through ``recon.models.checkpoint``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from recon.core.errors import ReconError
from recon.core.types import Mesh, Reconstruction, Views
from recon.inference.mesh import mesh_from_views
from recon.inference.posed import PosedPrediction, predict_posed, reconstruct_posed
from recon.inference.settings import InferenceSettings
from recon.inference.unposed import UnposedPrediction, predict_unposed, reconstruct_unposed
from recon.models import ModelConfig, ReconModel
from recon.models.adapter import PixelGaussians
from recon.models.checkpoint import DEFAULT_CHECKPOINT, read_checkpoint
from recon.models.frame import CanonicalFrame
from renderer import Cameras


class Reconstructor:
    """Feed-forward reconstruction with a ``ReconModel``.

    ``reconstruct(views)`` -> Gaussians in the input world frame (posed); ``reconstruct_unposed(images)``
    -> Gaussians and recovered cameras in the first camera's frame; ``mesh(views)`` -> triplane mesh.
    The keyword settings are those of ``InferenceSettings`` (read back as attributes of the same
    names); ``dtype`` (default bfloat16) is the autocast type, float32 turns autocast off.
    """

    name = "recon"

    def __init__(self, model: ReconModel, device: str | torch.device = "cpu", dtype: torch.dtype | None = None,
                 min_opacity: float = 0.005, info: dict | None = None, pose_min_conf: float = 1.5,
                 scale_gain: float = 1.0, carve_votes: int = 1, carve_threshold: float = 0.25):
        self.settings = InferenceSettings(min_opacity=min_opacity, pose_min_conf=pose_min_conf,
                                          scale_gain=scale_gain, carve_votes=carve_votes,
                                          carve_threshold=carve_threshold)
        self.model = model.eval().to(device)
        self.cfg: ModelConfig = model.cfg
        self.device = torch.device(device)
        self.dtype = dtype if dtype is not None else torch.bfloat16
        self.info = dict(info or {})

    @classmethod
    def from_pretrained(cls, directory: str | Path = DEFAULT_CHECKPOINT, device: str | torch.device = "cpu",
                        **kwargs) -> Reconstructor:
        """Load the checkpoint folder ``directory`` (``recon.models.checkpoint``); its config's
        ``inference.scale_gain`` is the default ``scale_gain``. ``kwargs``: the other settings."""
        ckpt = read_checkpoint(directory)
        kwargs.setdefault("scale_gain", ckpt.inference.get("scale_gain", 1.0))
        info = {"checkpoint": str(ckpt.directory), "sha256": ckpt.sha256, "scale_gain": kwargs["scale_gain"]}
        try:
            return cls(ckpt.model, device=device, info=info, **kwargs)
        except ReconError as e:
            raise ReconError(f"{ckpt.config_path}: {e}") from None

    # The settings, read-only, under the names callers and reports use.
    min_opacity = property(lambda self: self.settings.min_opacity)
    pose_min_conf = property(lambda self: self.settings.pose_min_conf)
    scale_gain = property(lambda self: self.settings.scale_gain)
    carve_votes = property(lambda self: self.settings.carve_votes)
    carve_threshold = property(lambda self: self.settings.carve_threshold)

    def predict_posed(self, views: Views) -> PosedPrediction:
        """``recon.inference.posed.predict_posed`` with this model and settings."""
        return predict_posed(self.model, views, self.settings, self.device, self.dtype)

    def predict(self, views: Views) -> tuple[PixelGaussians, CanonicalFrame, Cameras]:
        """Run the model on posed ``views``; returns ``(PixelGaussians, CanonicalFrame, working Cameras)``.

        When ``views.masks`` is given (and ``carve_votes > 0``), Gaussians outside the silhouettes
        of other views get opacity 0 (``recon.inference.carve``).
        """
        p = self.predict_posed(views)
        return p.gaussians, p.frame, p.cameras

    def reconstruct(self, inputs: Views) -> Reconstruction:
        """Posed reconstruction (``recon.inference.posed.reconstruct_posed``): Gaussians in the input
        world frame and units."""
        return reconstruct_posed(self.model, inputs, self.settings, self.device, self.dtype, self.info)

    def predict_unposed(self, images: Tensor, masks: Tensor | None = None) -> UnposedPrediction:
        """``recon.inference.unposed.predict_unposed``: ``images [V, H, W, 3]`` in [0, 1], optional
        ``masks [V, H, W(, 1)]``; the result is at the working size, first camera's frame."""
        return predict_unposed(self.model, images, masks, self.settings, self.device, self.dtype)

    def reconstruct_unposed(self, images: Tensor, masks: Tensor | None = None) -> tuple[Reconstruction, Cameras]:
        """``recon.inference.unposed.reconstruct_unposed``: Gaussians and the recovered cameras (``K``
        in pixels of the input's size), world = the first camera's frame, normalised pointmap units."""
        return reconstruct_unposed(self.model, images, masks, self.settings, self.device, self.dtype, self.info)

    def mesh(self, views: Views, resolution: int = 128, chunk: int = 1 << 16) -> Mesh:
        """``recon.inference.mesh.mesh_from_views``: the triplane SDF's zero level set for posed
        ``views`` at ``resolution`` nodes per axis, in the input world frame and units."""
        return mesh_from_views(self.model, views, self.device, self.dtype, resolution, chunk)
