"""Deterministic view selection by farthest-point sampling on camera positions and directions.

Used once to choose the fox-sparse views; the protocol then stores the chosen file names as
literal lists, so the protocol never changes even if this code does. ``tests/recon/eval`` checks
that this function still reproduces those lists from the data.
"""

from __future__ import annotations

import torch

from renderer import Cameras


def camera_features(cameras: Cameras) -> torch.Tensor:
    """``[C, 6]`` features: camera centres divided by their RMS distance to the mean centre
    (scale-free), and unit optical axes. Euclidean distance between features mixes position and
    viewing direction with equal weight."""
    centres = cameras.centers.double()
    spread = (centres - centres.mean(0)).pow(2).sum(-1).mean().sqrt().clamp_min(1e-12)
    return torch.cat([centres / spread, cameras.forward.double()], dim=-1)


def farthest_point_views(
    features: torch.Tensor,  # [C, D] one feature vector per candidate view
    n: int,  # views to pick
    chosen: list[int] | None = None,  # already-picked views (distances count from them); start set
    candidates: list[int] | None = None,  # indices allowed to be picked, default all
) -> list[int]:
    """Greedy farthest-point sampling: ``n`` new indices, each the candidate farthest from all picked so far.

    Without ``chosen`` the first pick is the candidate nearest the candidates' mean feature (a
    central view). Ties go to the lower index, so the result is deterministic.
    """
    candidates = list(range(len(features))) if candidates is None else list(candidates)
    picked = list(chosen or [])
    new: list[int] = []
    if not picked:
        mean = features[candidates].mean(0)
        first = min(candidates, key=lambda i: (float((features[i] - mean).norm()), i))
        picked.append(first)
        new.append(first)
    while len(new) < n:
        pool = [i for i in candidates if i not in picked]
        if not pool:
            raise ValueError(f"only {len(new)} views available, {n} requested")
        dist = torch.cdist(features[pool], features[picked]).amin(dim=1)
        best = max(range(len(pool)), key=lambda j: (float(dist[j]), -pool[j]))
        picked.append(pool[best])
        new.append(pool[best])
    return new


def split_inputs_targets(
    cameras: Cameras, n_inputs: int, n_targets: int, allowed: list[int] | None = None
) -> tuple[list[int], list[int]]:
    """Inputs spread over the rig by farthest-point sampling from a central view, then targets by
    farthest-point sampling from inputs and earlier targets (held-out views in the gaps between
    inputs, never near-duplicates of them). Returns disjoint index lists."""
    feats = camera_features(cameras)
    inputs = farthest_point_views(feats, n_inputs, candidates=allowed)
    targets = farthest_point_views(feats, n_targets, chosen=inputs, candidates=allowed)
    return inputs, targets
