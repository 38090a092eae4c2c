"""Result types of the renderer, shared by its CPU and gsplat paths."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class RenderOutput:
    """Rendered images for C cameras of size H x W.

    Attributes:
        rgb: [C, H, W, 3] colour composited over the background.
        alpha: [C, H, W, 1] accumulated opacity.
        depth: [C, H, W, 1] expected camera z-depth (world units) of the visible Gaussians,
            normalised by alpha; 0 where nothing was hit.
        features: [C, H, W, F] extra per-Gaussian channels composited like colour (no background),
            or None.
        radii: [C, N, 2] integer pixel half-extents of each Gaussian's box (0 = culled).
    """

    rgb: Tensor
    alpha: Tensor
    depth: Tensor
    features: Tensor | None
    radii: Tensor
