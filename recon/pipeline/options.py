"""What a reconstruction is asked to do: the typed options every entry point (CLI, batch, app, Python)
passes to ``recon.pipeline.reconstruct``.

Enums, not strings, carry the choices; ``ReconstructOptions.parse`` turns the strings of a command
line or a JSON job file into them and reports a bad value as a one-line ``ReconError`` that names
the option (not a command-line flag: the library does not know how it was called).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from recon.core.errors import ReconError


class Mode(str, Enum):
    """How the input cameras are found.

    - ``POSED``: given (a camera file or a dataset folder); outputs stay in that world frame and units.
    - ``UNPOSED``: none given; structure from motion or the model's pointmap head recovers them.
    - ``SINGLE``: one photo; a canonical camera looks at the world origin.
    - ``AUTO``: ``POSED`` when cameras are available, ``SINGLE`` for one photo, else ``UNPOSED``
      (which tries structure from motion first when there are enough photos).
    """

    AUTO = "auto"
    POSED = "posed"
    UNPOSED = "unposed"
    SINGLE = "single"


class MaskSource(str, Enum):
    """Foreground masks: ``AUTO`` (alpha channels; GrabCut for a single photo without one), ``ALPHA``,
    ``GRABCUT`` (single photo only) or ``NONE`` (no masks anywhere: no carving, no masked pose)."""

    AUTO = "auto"
    ALPHA = "alpha"
    GRABCUT = "grabcut"
    NONE = "none"


class MeshFrom(str, Enum):
    """What mesh exports start from: the Gaussians (TSDF fusion) or the triplane SDF (posed/single)."""

    GAUSSIANS = "gaussians"
    SDF = "sdf"


class TextureFrom(str, Enum):
    """Mesh texture colours: ``AUTO`` (input photos for posed input, else the model's colours),
    ``PHOTOS`` (also for unposed/single input, with the model's cameras) or ``MODEL``."""

    AUTO = "auto"
    PHOTOS = "photos"
    MODEL = "model"


FORMATS = ("ply", "splat", "glb", "obj")


def _number(value) -> float:
    """``value`` as a float, NaN when it is not a number (so that every range check refuses it)."""
    try:
        return math.nan if isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        return math.nan


@dataclass(frozen=True)
class ReconstructOptions:
    cameras: Path | None = None  # camera file or dataset folder for the inputs (posed)
    mode: Mode = Mode.AUTO
    views: tuple[int | str, ...] | None = None  # input views to use (indices or file names)
    refine_steps: int = 0  # at most this many refinement steps (0: no step limit when refine_seconds is set)
    refine_seconds: float = 0.0  # wall-clock budget of the refinement (0: none; with refine_steps 0, no refinement)
    device: str = "auto"  # auto | cpu | cuda
    checkpoint: Path | None = None  # default: recon.models.checkpoint.DEFAULT_CHECKPOINT
    mask: MaskSource = MaskSource.AUTO
    foreground_ratio: float = 0.85  # object fill of the crop (single mode)
    max_pixels: int = 40_000_000
    sfm_min_views: int = 8
    # Gaussians by default: with checkpoints/default they score Chamfer-L1 0.056 vs 0.084 for the SDF's
    # near-blob on 10 synthetic-val objects (docs/export_accuracy.md)
    mesh_from: MeshFrom = MeshFrom.GAUSSIANS
    texture_from: TextureFrom = TextureFrom.AUTO

    def __post_init__(self):
        for name, kind in (("mode", Mode), ("mask", MaskSource), ("mesh_from", MeshFrom),
                           ("texture_from", TextureFrom)):
            value = getattr(self, name)
            if not isinstance(value, kind):
                try:
                    object.__setattr__(self, name, kind(value))
                except ValueError:
                    choices = ", ".join(m.value for m in kind)
                    raise ReconError(f"{name} must be one of {choices}, got {value!r}") from None
        if isinstance(self.refine_steps, bool) or not isinstance(self.refine_steps, int) or self.refine_steps < 0:
            raise ReconError(f"refine_steps must be a whole number >= 0, got {self.refine_steps!r}")
        if not (0 <= _number(self.refine_seconds) < math.inf):  # NaN fails too
            raise ReconError(f"refine_seconds must be a finite number >= 0, got {self.refine_seconds!r}")
        if not 0 < _number(self.foreground_ratio) <= 1:  # NaN fails too
            raise ReconError(f"foreground_ratio must be in (0, 1], got {self.foreground_ratio!r}")
        for name in ("cameras", "checkpoint"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))
        if self.views is not None and not isinstance(self.views, tuple):
            object.__setattr__(self, "views", tuple(self.views))

    @classmethod
    def parse(cls, values: dict) -> ReconstructOptions:
        """Options from plain values (a JSON job file, keyword arguments): unknown keys are a
        ``ReconError`` naming them; strings become the enums; paths become ``Path``."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ReconError(f"unknown reconstruction option(s): {', '.join(unknown)}")
        return cls(**values)

    def refine_limits(self) -> tuple[int | None, float | None]:
        """``(steps, seconds)`` for the refine stage: ``refine_steps`` alone is a fixed step count,
        ``refine_seconds`` alone a budget with no step limit, both together whichever ends first,
        neither ``(0, None)``: no refinement."""
        seconds = float(self.refine_seconds) if self.refine_seconds > 0 else None
        steps = self.refine_steps if self.refine_steps > 0 else (None if seconds is not None else 0)
        return steps, seconds
