"""``reconstruct``: photos in, Gaussians out, as a short sequence of typed stages.

    load_inputs -> solve_cameras -> predict -> refine -> assemble (-> write_outputs)

Each stage lives in its own module with its own result type (``LoadedInputs``, ``CameraSolution``,
``Prediction``, ``Refinement``); ``assemble`` builds the result and its report from them. The CLI, the
batch jobs and the web app call these same functions; writing files is the separate
``recon.pipeline.write.write_outputs``. Frames and units of the outputs: ``recon.pipeline.options.Mode``.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

from recon.core.device import resolve_device
from recon.core.errors import ReconError
from recon.inference import Reconstructor
from recon.models.checkpoint import DEFAULT_CHECKPOINT
from recon.pipeline.cameras import requested_mode, solve_cameras
from recon.pipeline.load import load_inputs
from recon.pipeline.options import ReconstructOptions
from recon.pipeline.predict import predict
from recon.pipeline.refine import StepCallback, refine
from recon.pipeline.result import ReconstructResult, StageTimes, assemble
from recon.pipeline.write import check_formats, write_outputs

# The stages of one ``reconstruct`` call, in order (docs/architecture.md draws them from this).
STAGES = (load_inputs, solve_cameras, predict, refine, assemble, write_outputs)


def load_reconstructor(opts: ReconstructOptions) -> Reconstructor:
    """The model for ``opts`` (``opts.checkpoint``, default the shipped one) on ``opts.device``."""
    return Reconstructor.from_pretrained(opts.checkpoint or DEFAULT_CHECKPOINT, device=resolve_device(opts.device))


def reconstruct(inputs: list[str | Path] | str | Path, options: ReconstructOptions | None = None,
                reconstructor: Reconstructor | None = None, on_refine_step: StepCallback | None = None) -> ReconstructResult:
    """Run the pipeline on ``inputs`` (image files, a folder of images, or a dataset folder).

    ``reconstructor``: an already loaded model (the app injects its own); default: load
    ``options.checkpoint``. ``on_refine_step(step, seconds, psnr)``: called after each refinement
    step (a progress bar). Raises ``ReconError`` for bad input (one line), before any work it can."""
    opts = options or ReconstructOptions()
    t_all = time.perf_counter()
    loaded = load_inputs(inputs, opts)
    requested_mode(loaded, opts)  # a wrong image count is refused before the model loads
    t0 = time.perf_counter()
    model = reconstructor if reconstructor is not None else load_reconstructor(opts)
    model_load = time.perf_counter() - t0
    solution = solve_cameras(loaded, opts, model.cfg.input_long_side)
    prediction = predict(solution, model)
    refinement = refine(prediction, model.cfg, *opts.refine_limits(), on_step=on_refine_step)
    times = StageTimes(model_load=model_load, total=time.perf_counter() - t_all)
    return assemble(opts, loaded, solution, prediction, refinement, model, times)


def check_job_options(options: dict) -> ReconstructOptions:
    """The ``ReconstructOptions`` of batch job ``options`` (their fields plus ``export``, a list of
    formats); a bad value is a one-line ``ReconError`` naming the option, a missing checkpoint too."""
    opts = dict(options)
    check_formats(tuple(opts.pop("export", ("ply",))))
    ro = ReconstructOptions.parse(opts)
    if ro.checkpoint is not None and not ro.checkpoint.is_dir():
        raise ReconError(f"checkpoint {ro.checkpoint}: no such folder")
    return ro


def run_job(job_dir: Path, out_tmp: Path, options: dict) -> dict:
    """Batch job: reconstruct the images (and optional camera file) in ``job_dir`` into ``out_tmp``.

    ``options``: ``ReconstructOptions`` fields plus ``export`` (list of formats). A camera file
    or dataset layout in the job folder makes it a posed job. Returns the report; the batch
    writes ``report.json`` itself, last."""
    opts = dict(options)
    formats = tuple(opts.pop("export", ("ply",)))
    ro = ReconstructOptions.parse(opts)
    result = reconstruct([Path(job_dir)], ro, reconstructor=_cached_reconstructor(ro.checkpoint or DEFAULT_CHECKPOINT,
                                                                                  ro.device))
    written = write_outputs(result, out_tmp, formats)
    (out_tmp / "report.json").unlink()
    report = written.report
    report["outputs"] = [p.name for p in written.files]
    return report


@functools.lru_cache(maxsize=2)
def _cached_reconstructor(checkpoint: Path, device: str) -> Reconstructor:
    """One model per worker process, loaded on its first job (weights are read once per process)."""
    return Reconstructor.from_pretrained(checkpoint, device=resolve_device(device))
