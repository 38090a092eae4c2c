"""Image, depth and geometry metrics used by the evaluation protocols.

Conventions, stated once:
- Images are ``[H, W, 3]`` (or batched ``[B, H, W, 3]``) float RGB in [0, 1], channels last, as
  everywhere in Recon. Values are clamped to [0, 1] before scoring.
- PSNR is ``10 log10(1 / MSE)`` per image (data range 1), optionally over the pixels of a mask.
- SSIM is ``kornia.metrics.ssim`` with an 11-tap Gaussian window (sigma 1.5), data range 1,
  ``padding="valid"`` (the border where the window does not fit is not scored, as in the original
  SSIM code and mip-NeRF's evaluation), averaged over pixels and RGB channels.
- Depth error compares expected z-depth (world units) on pixels where the ground truth has a
  surface (``gt > 0``) and the prediction is opaque (``alpha > alpha_min``); ``coverage`` is the
  fraction of ground-truth surface pixels that were scored.
- Geometry: Chamfer-L1 and F-score between point sets sampled uniformly (by area) on two meshes.
  Distances are Euclidean, in world units. ``chamfer_l1 = (accuracy + completeness) / 2`` where
  accuracy is the mean distance from predicted points to the ground truth and completeness the
  mean distance from ground-truth points to the prediction. F-score at ``tau`` (world units) is
  the harmonic mean of precision (predicted points within tau of the GT) and recall (GT points
  within tau of the prediction); protocols fix tau relative to the GT bounding-box diagonal.

Every function returns plain Python floats (``nan`` where a value is undefined) so results go
straight into JSON after ``recon.eval.runner`` maps ``nan`` to ``null``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import trimesh
from kornia.metrics import ssim as kornia_ssim
from scipy.spatial import cKDTree
from torch import Tensor


def psnr(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> float:
    """PSNR in dB of ``pred`` vs ``target`` ([H, W, C] in [0, 1]); over ``mask [H, W, 1] > 0.5`` if given.

    Identical images give ``inf``; an empty mask gives ``nan``.
    """
    err = (pred.float().clamp(0, 1) - target.float().clamp(0, 1)) ** 2
    if mask is not None:
        keep = (mask[..., 0] > 0.5).to(err.device)
        if not bool(keep.any()):
            return math.nan
        mse = float(err[keep].mean())
    else:
        mse = float(err.mean())
    return math.inf if mse == 0.0 else -10.0 * math.log10(mse)


def ssim(pred: Tensor, target: Tensor, window_size: int = 11, padding: str = "valid") -> float:
    """Mean SSIM of two ``[H, W, 3]`` images in [0, 1] (kornia, Gaussian window, data range 1)."""
    a = pred.float().clamp(0, 1).permute(2, 0, 1)[None]
    b = target.float().clamp(0, 1).permute(2, 0, 1)[None].to(a.device)
    if padding == "valid" and min(a.shape[-2:]) < window_size:
        padding = "same"  # tiny test images: score them rather than fail
    return float(kornia_ssim(a, b, window_size, max_val=1.0, padding=padding).mean())


def depth_errors(
    pred_depth: Tensor,  # [H, W, 1] expected z-depth, world units
    pred_alpha: Tensor,  # [H, W, 1] accumulated opacity of the prediction
    gt_depth: Tensor,  # [H, W, 1] ground-truth z-depth, 0 where there is no surface
    alpha_min: float = 0.5,
) -> dict[str, float]:
    """``{"depth_abs_rel", "depth_rmse", "depth_coverage"}`` on pixels with ``gt > 0`` and ``alpha > alpha_min``.

    abs-rel is ``mean(|pred - gt| / gt)`` (unitless), RMSE is in world units, coverage is the scored
    fraction of ground-truth surface pixels. Errors are ``nan`` when no pixel is scored.
    """
    gt = gt_depth.float()[..., 0]
    pred = pred_depth.float()[..., 0].to(gt.device)
    surface = gt > 0
    valid = surface & (pred_alpha.float()[..., 0].to(gt.device) > alpha_min)
    n_surface, n_valid = int(surface.sum()), int(valid.sum())
    coverage = n_valid / n_surface if n_surface else math.nan
    if n_valid == 0:
        return {"depth_abs_rel": math.nan, "depth_rmse": math.nan, "depth_coverage": coverage}
    diff = pred[valid] - gt[valid]
    return {
        "depth_abs_rel": float((diff.abs() / gt[valid]).mean()),
        "depth_rmse": float(diff.pow(2).mean().sqrt()),
        "depth_coverage": coverage,
    }


# ---- geometry ------------------------------------------------------------------------------------


def sample_mesh_points(vertices, faces, count: int, seed: int = 0) -> np.ndarray:
    """``[count, 3]`` float64 points uniform by area on a triangle mesh (trimesh, seeded).

    ``vertices [V, 3]`` world units and ``faces [F, 3]`` as tensors or arrays. A mesh without
    faces (a point cloud) returns its vertices.
    """
    v = vertices.detach().cpu().double().numpy() if isinstance(vertices, Tensor) else np.asarray(vertices, np.float64)
    f = faces.detach().cpu().long().numpy() if isinstance(faces, Tensor) else np.asarray(faces, np.int64)
    if f.size == 0:
        return v.reshape(-1, 3)
    mesh = trimesh.Trimesh(v, f.reshape(-1, 3), process=False)
    if mesh.area <= 0:
        return v.reshape(-1, 3)
    points, _ = trimesh.sample.sample_surface(mesh, int(count), seed=seed)
    return np.asarray(points, dtype=np.float64)


def nearest_distances(queries: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``[Q]`` Euclidean distance from each query point ``[Q, 3]`` to its nearest point in ``[P, 3]``
    (scipy's ``cKDTree``; ``nearest_distances_reference`` is its brute-force twin)."""
    queries = np.asarray(queries, dtype=np.float64).reshape(-1, 3)
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if len(points) == 0:
        return np.full(len(queries), np.inf)
    distances, _ = cKDTree(points).query(queries, k=1)
    return np.asarray(distances, dtype=np.float64)


def nearest_distances_reference(queries: np.ndarray, points: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """``nearest_distances`` by exact ``torch.cdist`` over chunks of queries (the test reference)."""
    queries = np.asarray(queries, dtype=np.float64).reshape(-1, 3)
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if len(points) == 0:
        return np.full(len(queries), np.inf)
    p = torch.from_numpy(points)
    out = [torch.cdist(torch.from_numpy(queries[i : i + chunk]), p).amin(dim=1) for i in range(0, len(queries), chunk)]
    return torch.cat(out).numpy() if out else np.zeros(0)


def chamfer_fscore(pred_points: np.ndarray, gt_points: np.ndarray, tau: float) -> dict[str, float]:
    """Chamfer-L1 and F-score@tau between point sets ``[P, 3]`` and ``[G, 3]`` (world units).

    Returns ``{"chamfer_l1", "accuracy", "completeness", "precision", "recall", "fscore", "tau"}``;
    precision/recall/F-score are fractions in [0, 1]. An empty prediction scores F = 0 and
    Chamfer ``inf``.
    """
    if tau <= 0:
        raise ValueError(f"F-score threshold tau must be positive, got {tau}")
    pred_points = np.asarray(pred_points, dtype=np.float64).reshape(-1, 3)
    gt_points = np.asarray(gt_points, dtype=np.float64).reshape(-1, 3)
    if len(gt_points) == 0:
        raise ValueError("the ground-truth point set is empty")
    if len(pred_points) == 0:
        return {"chamfer_l1": math.inf, "accuracy": math.inf, "completeness": math.inf,
                "precision": 0.0, "recall": 0.0, "fscore": 0.0, "tau": float(tau)}
    d_pred_to_gt = nearest_distances(pred_points, gt_points)
    d_gt_to_pred = nearest_distances(gt_points, pred_points)
    accuracy, completeness = float(d_pred_to_gt.mean()), float(d_gt_to_pred.mean())
    precision = float((d_pred_to_gt < tau).mean())
    recall = float((d_gt_to_pred < tau).mean())
    fscore = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return {
        "chamfer_l1": 0.5 * (accuracy + completeness),
        "accuracy": accuracy,
        "completeness": completeness,
        "precision": precision,
        "recall": recall,
        "fscore": fscore,
        "tau": float(tau),
    }


def bounding_diagonal(points: np.ndarray) -> float:
    """Length of the axis-aligned bounding-box diagonal of ``[P, 3]`` points (world units)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    return float(np.linalg.norm(points.max(0) - points.min(0))) if len(points) else 0.0


def mesh_metrics(pred_mesh, gt_mesh, samples: int = 100_000, tau_rel: float = 0.01, seed: int = 0) -> dict[str, float]:
    """Chamfer-L1 / F-score between two ``recon.core.types.Mesh`` objects.

    ``samples`` points are drawn on each surface (seeded); ``tau = tau_rel * diagonal`` of the GT
    samples' bounding box. Chamfer and tau are in world units; ``gt_diagonal`` is reported too.
    """
    gt = sample_mesh_points(gt_mesh.vertices, gt_mesh.faces, samples, seed=seed)
    pred = sample_mesh_points(pred_mesh.vertices, pred_mesh.faces, samples, seed=seed + 1)
    diagonal = bounding_diagonal(gt)
    out = chamfer_fscore(pred, gt, tau=tau_rel * diagonal)
    out["gt_diagonal"] = diagonal
    return out
