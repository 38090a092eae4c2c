"""What every inference function shares: the settings that are not weights, the autocast context and
the model's working size."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from recon.core.errors import ReconError
from recon.core.resize import model_input_size
from recon.models import ModelConfig


@dataclass(frozen=True)
class InferenceSettings:
    """Inference knobs of a ``Reconstructor`` (none of them learned).

    Attributes:
        min_opacity: pixel Gaussians at or below this opacity are left out of a ``Reconstruction``.
        pose_min_conf: pointmap confidence that counts for unposed pose recovery and scale.
        scale_gain: multiplies every predicted Gaussian scale; a calibration for weights whose
            photometric loss only saw renders coarser than the ones they are used for
            (``bench/scale_gain.py`` measures it on training seeds; a checkpoint's config.json
            stores it as ``inference.scale_gain``).
        carve_votes: silhouette carving (``recon.inference.carve``) of posed input that comes with
            masks: a pixel Gaussian is dropped when its centre falls on the background of at least
            this many other views; 0 turns it off.
        carve_threshold: mask value below which a view says background.

    Raises ``ReconError`` (one line) for a ``carve_votes`` that is not a whole number >= 0 or a
    ``scale_gain`` that is not a positive finite number.
    """

    min_opacity: float = 0.005
    pose_min_conf: float = 1.5
    scale_gain: float = 1.0
    carve_votes: int = 1
    carve_threshold: float = 0.25

    def __post_init__(self):
        votes, gain = self.carve_votes, self.scale_gain
        if isinstance(votes, bool) or not isinstance(votes, int) or votes < 0:
            raise ReconError(f"carve_votes must be a whole number >= 0, not {votes!r}")
        if isinstance(gain, bool) or not (isinstance(gain, (int, float)) and math.isfinite(gain) and gain > 0):
            raise ReconError(f"scale_gain must be a positive number, not {gain!r}")
        # Frozen: the conversions go through object.__setattr__.
        object.__setattr__(self, "scale_gain", float(gain))
        object.__setattr__(self, "carve_threshold", float(self.carve_threshold))


def autocast(device: torch.device, dtype: torch.dtype):
    """The model's autocast context on ``device``; a no-op for ``float32``."""
    return torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)


def working_size(cfg: ModelConfig, width: int, height: int) -> tuple[int, int]:
    """The model's working size ``(w, h)`` in pixels for an input of ``width x height`` pixels."""
    return model_input_size(width, height, cfg.input_long_side, cfg.input_multiple)
