"""The one small interface through which any reconstruction method meets the protocols.

A method gets the protocol's input ``Views`` (images, cameras; masks when the protocol provides
them) and returns a ``Reconstruction``. Protocols render its Gaussians at the held-out target
cameras with their own background, and score a mesh when one is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from torch import Tensor

from recon.data.types import Views
from renderer import Gaussians


@dataclass
class Mesh:
    """Triangle mesh in the world frame: vertices [V, 3] world units, faces [F, 3] int64, optional colours [V, 3]."""

    vertices: Tensor
    faces: Tensor
    vertex_colors: Tensor | None = None


@dataclass
class Reconstruction:
    """What a method returns: Gaussians in the input world frame, optionally a mesh, and timings."""

    gaussians: Gaussians
    mesh: Mesh | None = None
    seconds: float = 0.0  # wall time of the reconstruction itself, measured by the method
    info: dict = field(default_factory=dict)


class Method(Protocol):
    """A reconstruction method. ``name`` labels results; ``reconstruct`` must not look at targets."""

    name: str

    def reconstruct(self, inputs: Views) -> Reconstruction: ...
