"""Stage 3, predict: the model's Gaussians for the solved views, and the cameras of unposed views.

Posed and single input keep their cameras (Gaussians in that world frame); unposed input gets the
cameras the pointmap head recovers (world = the first camera's frame, units = the normalised
pointmap's: mean distance of its confident points to the first camera = 1).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from recon.core.types import Views
from recon.inference import Reconstructor
from recon.pipeline.cameras import CameraSolution
from renderer import Gaussians


@dataclass
class Prediction:
    """The feed-forward result.

    Attributes:
        gaussians: N Gaussians in the output world frame.
        views: the input views with their final cameras (given, SfM or predicted), at input size.
        info: what the report records of the prediction (``carved`` for posed input; ``confidence``
            and ``pose_masks`` for unposed input).
        warnings: one line each, for the report (unposed cameras that are not to be trusted).
        seconds: wall time of the stage.
    """

    gaussians: Gaussians
    views: Views
    info: dict = field(default_factory=dict)
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)


# Below this mean inlier ratio of the pointmap pose solver (the report's ``confidence``, 0 to 1) the
# recovered cameras are not to be trusted; exact pointmaps give 1, the failures of issue 23 0.01-0.24.
LOW_POSE_CONFIDENCE = 0.5


def predict(solution: CameraSolution, reconstructor: Reconstructor) -> Prediction:
    """Stage 3: run the model on the solved views."""
    t0 = time.perf_counter()
    if solution.cameras is None:
        rec, cams = reconstructor.reconstruct_unposed(solution.images, solution.masks)
        views = Views(solution.images, cams, masks=solution.masks, names=solution.names)
        inlier = rec.info.get("pose_inlier_ratio", [0.0])
        info = {"confidence": float(sum(inlier) / max(1, len(solution.names))),
                "pose_masks": solution.masks is not None}  # alpha masks kept the background out of the pose
        warnings = pose_warnings(info["confidence"], rec.info.get("pose_solved"), solution.names)
    else:
        views = Views(solution.images, solution.cameras, masks=solution.masks, names=solution.names)
        rec = reconstructor.reconstruct(views)
        info = {"carved": rec.info.get("carved", 0)}  # Gaussians outside other views' masks (alpha input)
        warnings = []
    return Prediction(rec.gaussians, views, info, time.perf_counter() - t0, warnings)


def pose_warnings(confidence: float, solved: list[bool] | None, names: list[str]) -> list[str]:
    """Warnings for cameras recovered from the pointmap: a low ``confidence`` (mean inlier ratio, 0 to 1)
    and views whose camera was not found (their Gaussians are left out)."""
    warnings = []
    if confidence < LOW_POSE_CONFIDENCE:
        warnings.append(f"low pose confidence {confidence:.2f} (below {LOW_POSE_CONFIDENCE}): the cameras recovered "
                        "from the pointmap, and the shape placed with them, are unreliable; give a camera file "
                        "for these photos if you have one")
    if solved is not None and not all(solved):
        missing = [n for n, ok in zip(names, solved) if not ok]
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        warnings.append(f"cameras found for only {len(names) - len(missing)} of {len(names)} views; the others "
                        f"are left out: {shown}")
    return warnings
