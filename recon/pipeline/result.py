"""The pipeline's result and its report, built from the stage results (never mutated along the way)."""

from __future__ import annotations

import functools
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from recon.core.types import Mesh, Views
from recon.inference import Reconstructor
from recon.pipeline.cameras import CameraSolution
from recon.pipeline.load import LoadedInputs
from recon.pipeline.options import MeshFrom, Mode, ReconstructOptions, TextureFrom
from recon.pipeline.predict import Prediction
from recon.pipeline.refine import Refinement
from renderer import Cameras, Gaussians


@dataclass
class ReconstructResult:
    """Gaussians and input cameras in the output world frame (``recon.pipeline.options.Mode`` says
    which), the input names and the report (mode, pose method, timings, counts, warnings).

    ``mesh_source()`` (computed on first use, then cached) is what mesh exports start from: the
    Gaussians (TSDF fusion), or, when ``make_mesh`` is set (``mesh_from`` sdf on posed and single
    input), the triplane SDF's mesh in the world frame. ``photos``: the input views (full-resolution
    images, cameras, foreground masks from the alpha channel when every image has one) that mesh
    exports project onto the surface for its texture, or None to use the model's colours."""

    gaussians: Gaussians
    cameras: Cameras
    names: list[str]
    report: dict = field(default_factory=dict)
    make_mesh: Callable[[], Mesh] | None = None
    photos: Views | None = None
    mesh_seconds: float | None = None  # time spent in make_mesh, once it ran
    _mesh: Mesh | None = None

    def mesh_source(self) -> Mesh | Gaussians:
        if self.make_mesh is None:
            return self.gaussians
        if self._mesh is None:
            t0 = time.perf_counter()
            self._mesh = self.make_mesh()
            self.mesh_seconds = time.perf_counter() - t0
        return self._mesh

    def up_direction(self) -> tuple[float, float, float]:
        """World up for glTF +Y: the mean camera up (-y of OpenCV cameras), snapped to the nearest
        world axis when within 25 degrees of it (datasets are usually axis-aligned)."""
        up = -self.cameras.c2w[:, :3, 1].double().mean(0)
        up = up / up.norm().clamp_min(1e-12)
        k = int(up.abs().argmax())
        if float(up[k].abs()) > math.cos(math.radians(25)):
            snapped = torch.zeros(3, dtype=up.dtype)
            snapped[k] = float(up[k].sign())
            up = snapped
        return tuple(float(v) for v in up)


@dataclass
class StageTimes:
    """Wall times (seconds) of the stages that are not in their own results."""

    model_load: float
    total: float


def uses_photo_texture(opts: ReconstructOptions, mode: Mode) -> bool:
    return opts.texture_from is TextureFrom.PHOTOS or (opts.texture_from is TextureFrom.AUTO and mode is Mode.POSED)


def build_report(opts: ReconstructOptions, loaded: LoadedInputs, solution: CameraSolution, prediction: Prediction,
                 refinement: Refinement, times: StageTimes, device: torch.device, checkpoint: str | None,
                 mesh_from: str) -> dict:
    """``report.json``'s content before export: what each stage did, and how long it took."""
    timings = {"load": loaded.seconds, "model_load": times.model_load, "preprocess": solution.seconds}
    if solution.sfm_seconds is not None:
        timings["sfm"] = solution.sfm_seconds
    timings["predict"] = prediction.seconds
    if refinement.seconds is not None:
        timings["refine"] = refinement.seconds
    timings["total_before_export"] = times.total
    report = {"inputs": [str(p) for p in loaded.paths], "warnings": loaded.warnings + solution.warnings + prediction.warnings,
              "timings": timings, "mode": solution.mode.value, "pose_method": solution.pose_method,
              "pose_reason": solution.pose_reason}
    if solution.sfm is not None:
        report["sfm"] = solution.sfm
    if solution.confidence is not None:
        report["confidence"] = solution.confidence
    report.update(prediction.info)
    if refinement.info is not None:
        report["refine"] = refinement.info
    report.update(views=len(solution.names), gaussians=len(refinement.gaussians), device=str(device),
                  checkpoint=checkpoint, machine={"platform": platform.platform(), "cpu_count": os.cpu_count(),
                                                  "torch": torch.__version__},
                  mesh_from=mesh_from,
                  texture_from="photos" if uses_photo_texture(opts, solution.mode) else "model")
    return report


def assemble(opts: ReconstructOptions, loaded: LoadedInputs, solution: CameraSolution, prediction: Prediction,
             refinement: Refinement, model: Reconstructor, times: StageTimes) -> ReconstructResult:
    """Stage 5: the result of one run from the stage results, with its report."""
    make_mesh = _sdf_mesh_maker(opts, solution.mode, prediction.views, model)
    report = build_report(opts, loaded, solution, prediction, refinement, times, model.device,
                          model.info.get("checkpoint"), "sdf" if make_mesh else "gaussians")
    photos = prediction.views if uses_photo_texture(opts, solution.mode) else None
    return ReconstructResult(refinement.gaussians, prediction.views.cameras, solution.names, report, make_mesh, photos)


def _sdf_mesh_maker(opts: ReconstructOptions, mode: Mode, views: Views, model: Reconstructor):
    """The triplane SDF's mesh of ``views``, made on demand, when asked for on posed or single input."""
    if opts.mesh_from is not MeshFrom.SDF or mode is Mode.UNPOSED or model.cfg.triplane_head is None:
        return None
    return functools.partial(model.mesh, views)
