"""The shared vocabulary of recon: views, training items, meshes, reconstructions and the method interface.

Every layer above speaks these types: the data engine, the model's inference, the pipeline, the
exporters, the baselines, the protocols and the trainer.

Images are float32 in [0, 1], channels last, in the pixels of ``cameras`` (OpenCV, c2w world).
``depth_z`` is camera z-depth in world units (0 where nothing was hit); ``mask`` is 1 on the object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import Tensor

from renderer import Cameras, Gaussians


@dataclass
class Views:
    """V posed views of one object or scene.

    Attributes:
        images: [V, H, W, 3] colour in [0, 1].
        cameras: V cameras of size W x H.
        masks: [V, H, W, 1] foreground in [0, 1], or None when unknown.
        depth_z: [V, H, W, 1] camera z-depth in world units (0 = no surface), or None.
        normals: [V, H, W, 3] unit world-frame normals (0 = no surface), or None.
        names: one label per view (file name or index), for reports.
    """

    images: Tensor
    cameras: Cameras
    masks: Tensor | None = None
    depth_z: Tensor | None = None
    normals: Tensor | None = None
    names: list[str] = field(default_factory=list)

    def __post_init__(self):
        V, H, W, _ = self.images.shape
        if len(self.cameras) != V or (self.cameras.width, self.cameras.height) != (W, H):
            raise ValueError(
                f"{V} images of {W}x{H} but {len(self.cameras)} cameras of {self.cameras.width}x{self.cameras.height}"
            )
        if not self.names:
            self.names = [str(i) for i in range(V)]

    def __len__(self) -> int:
        return self.images.shape[0]

    def select(self, idx: list[int]) -> Views:
        pick = lambda t: None if t is None else t[idx]
        return Views(self.images[idx], self.cameras[idx], pick(self.masks), pick(self.depth_z), pick(self.normals),
                     [self.names[i] for i in idx])

    def to(self, device=None) -> Views:
        mv = lambda t: None if t is None else t.to(device)
        return Views(mv(self.images), self.cameras.to(device), mv(self.masks), mv(self.depth_z), mv(self.normals),
                     list(self.names))


@dataclass
class SdfSamples:
    """Exact signed-distance samples of a procedural object (negative inside).

    Attributes:
        points: [S, 3] world positions.
        sdf: [S] signed distance in world units.
        colors: [S, 3] albedo at the points (meaningful near the surface), or None.
    """

    points: Tensor
    sdf: Tensor
    colors: Tensor | None = None


@dataclass
class Item:
    """One training/evaluation example: input views, held-out target views, optional SDF samples."""

    inputs: Views
    targets: Views
    sdf: SdfSamples | None = None
    meta: dict = field(default_factory=dict)

    def to(self, device=None) -> Item:
        sdf = None if self.sdf is None else SdfSamples(
            self.sdf.points.to(device), self.sdf.sdf.to(device), None if self.sdf.colors is None else self.sdf.colors.to(device)
        )
        return Item(self.inputs.to(device), self.targets.to(device), sdf, dict(self.meta))


def empty_like_views(views: Views) -> Views:
    return Views(torch.zeros_like(views.images), views.cameras)

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
