"""Silhouette carving of pixel-aligned Gaussians (a visual-hull test at inference, no weights).

With foreground masks for the input views, any point of the object projects inside the mask of
every view that sees it (in front of the camera, inside the image). A pixel Gaussian of view ``i``
whose centre lands outside the mask of another view ``j`` lies in space that ``j`` saw empty: a
floater or a background pixel. The feed-forward head has no such constraint, and with more views
its per-view depth errors add up to blur around the silhouette; carving removes them.

Frames: any one world frame shared by ``means`` and the cameras (OpenCV axes, ``K`` in pixels of
the masks' ``W x H``, pixel centres at +0.5).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def outside_mask_votes(
    means: Tensor,  # [N, 3] Gaussian centres, world frame
    source_view: Tensor,  # [N] long: the view each Gaussian was predicted from (never tests itself)
    c2w: Tensor,  # [V, 4, 4] camera-to-world, OpenCV
    K: Tensor,  # [V, 3, 3] pixels of the masks
    masks: Tensor,  # [V, H, W] foreground in [0, 1]
    # A bilinear mask value below this counts as background. Below 0.5 to spare the silhouette's
    # antialiased edge: on training seeds 0.25 kept the whole-image gain of 0.5 (19.50 vs 19.51 dB)
    # and lost less over the foreground (13.41 vs 13.32 dB; no carving 13.47).
    threshold: float = 0.25,
    near: float = 1e-6,  # centres closer than this (camera z) are not tested by that view
) -> Tensor:
    """Number of *other* views ``[N]`` (int64) that see each centre in front of them, inside their
    image, and on their background (mask bilinearly sampled below ``threshold``)."""
    V, H, W = masks.shape
    X = means.float()
    w2c = torch.linalg.inv(c2w.float())
    votes = torch.zeros(X.shape[0], dtype=torch.long, device=X.device)
    for j in range(V):
        p = X @ w2c[j, :3, :3].T + w2c[j, :3, 3]
        z = p[:, 2]
        front = z > near
        uv = p[:, :2] / z.clamp_min(near)[:, None] * torch.stack([K[j, 0, 0], K[j, 1, 1]]).float() + K[j, :2, 2].float()
        inside = front & (uv[:, 0] >= 0) & (uv[:, 0] <= W) & (uv[:, 1] >= 0) & (uv[:, 1] <= H) & (source_view != j)
        # grid_sample's align_corners=False maps -1/+1 to the image's outer pixel edges: pixel coords 0 and W.
        grid = torch.stack([uv[:, 0] / W * 2 - 1, uv[:, 1] / H * 2 - 1], -1)[None, None]
        m = F.grid_sample(masks[j][None, None].float(), grid, mode="bilinear", padding_mode="border",
                          align_corners=False)[0, 0, 0]
        votes += (inside & (m < threshold)).long()
    return votes

