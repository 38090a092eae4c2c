"""The app's callbacks, as plain functions of their inputs (tested without a browser).

The model (a ``recon.inference.Reconstructor``) is injected by ``build_app``; every callback
turns user mistakes (``UploadError``, ``ReconError``) into ``gr.Error`` so the page shows a one-line
message and the server keeps serving. Every network run and mesh export is logged on the
``recon.app`` logger (one line each, ``recon app`` prints them), and each session counts its
network runs, so anyone can check that mesh re-exports never run the model again.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from app.mesh import MeshSettings, export_mesh_from_cache
from app.uploads import StagedInputs, UploadError, UploadLimits, stage_uploads
from app.views import (
    camera_plot,
    mask_overlay,
    render_turntable,
    thumbnail,
    write_video,
)
from recon.core.errors import ReconError
from recon.pipeline.inputs import load_images
from recon.pipeline.options import Mode, ReconstructOptions
from recon.pipeline.preprocess import foreground_mask
from recon.pipeline.result import ReconstructResult
from recon.pipeline.run import reconstruct
from recon.pipeline.write import write_outputs
from renderer.io.atomic import atomic_output

MODES = tuple(m.value for m in Mode)
log = logging.getLogger("recon.app")


@dataclass
class AppConfig:
    """Server-side settings of the app (limits, work folder, turntable)."""

    limits: UploadLimits = field(default_factory=UploadLimits)
    work_root: Path | None = None  # per-session folders go here; default: a fresh temp folder
    turntable_frames: int = 24
    turntable_size: int = 192  # pixels (square); CPU render time grows with frames x pixels
    turntable_fps: int = 12
    max_refine_steps: int = 500
    session_ttl_s: int = 3600  # a session's folder is deleted this long after its tab closes
    concurrency_limit: int = 1  # reconstructions running at once (the rest wait in the queue)

    def root(self) -> Path:
        if self.work_root is None:
            self.work_root = Path(tempfile.mkdtemp(prefix="recon_app_"))
            self._made_root = True
        self.work_root.mkdir(parents=True, exist_ok=True)
        return self.work_root

    def cleanup(self) -> None:
        """Delete the work folder when the app made it (a temp folder); a given ``work_root`` is the
        caller's and stays. Called when the server stops."""
        if getattr(self, "_made_root", False) and self.work_root is not None:
            shutil.rmtree(self.work_root, ignore_errors=True)
            self.work_root, self._made_root = None, False


@dataclass
class SessionCache:
    """One browser session's folder and its latest reconstruction (DUSt3R-style scene state), so that
    mesh settings re-export without re-running the network."""

    folder: Path
    result: ReconstructResult | None = None
    run_dir: Path | None = None
    meshes: dict = field(default_factory=dict)  # (MeshSettings, "glb"|"obj") -> {"path", "faces", "seconds"}
    surface: tuple | None = None  # (extracted Mesh, colour fn) of ``result``, shared by all mesh settings
    network_runs: int = 0  # reconstructions (network forward passes) run for this session

    @property
    def name(self) -> str:
        """Short session id for log lines."""
        return self.folder.name.removeprefix("session_")[:8]

    @classmethod
    def new(cls, config: AppConfig) -> SessionCache:
        folder = config.root() / f"session_{uuid.uuid4().hex}"
        folder.mkdir(parents=True)
        return cls(folder)

    def new_run(self) -> Path:
        """A fresh run folder; the previous run's files (and its mesh cache) are deleted."""
        if self.run_dir is not None:
            shutil.rmtree(self.run_dir, ignore_errors=True)
        self.result, self.meshes, self.surface = None, {}, None
        self.run_dir = self.folder / f"run_{uuid.uuid4().hex[:12]}"
        self.run_dir.mkdir(parents=True)
        return self.run_dir


def cleanup_session(cache: SessionCache | None) -> None:
    """``gr.State`` delete callback: remove the session's folder."""
    if isinstance(cache, SessionCache):
        shutil.rmtree(cache.folder, ignore_errors=True)


def _ensure(cache: SessionCache | None, config: AppConfig) -> SessionCache:
    return cache if isinstance(cache, SessionCache) else SessionCache.new(config)


def _stage(files, camera_file, folder: Path, config: AppConfig) -> StagedInputs:
    try:
        return stage_uploads(files, camera_file, folder, config.limits)
    except UploadError as e:
        raise gr.Error(str(e), print_exception=False, duration=None) from None


def preview(files, camera_file, mode: str, remove_background: bool, cache, config: AppConfig):
    """Thumbnails of the uploads; for single-image input the foreground mask is overlaid (background
    tinted red). Returns ``(gallery items, note, cache)``."""

    if not files:
        return [], "", cache
    cache = _ensure(cache, config)
    staged = _stage(files, None, cache.folder / "preview", config)
    try:
        images = load_images(staged.images, max_pixels=config.limits.max_pixels)
    except ReconError as e:
        raise gr.Error(str(e), print_exception=False, duration=None) from None
    single = mode == "single" or (mode == "auto" and len(images) == 1 and not camera_file)
    items, note = [], f"{len(images)} photo(s)"
    for im, shown in zip(images, staged.original_names, strict=True):
        rgb = im.rgb.numpy()
        if im.alpha is not None:
            rgb = rgb * im.alpha.numpy()[..., None] + (1 - im.alpha.numpy()[..., None])
        caption = shown
        if single:
            m = foreground_mask(im, "alpha" if remove_background else "none")
            rgb = mask_overlay(rgb, m.mask.numpy())
            caption = f"{shown} (mask: {m.method}; red = removed background)"
            note += f"; single-image mode, mask by {m.method}" + (f" ({m.warning})" if m.warning else "")
        items.append((thumbnail(rgb), caption))
    return items, note, cache


@dataclass
class RunOutputs:
    splat: Path
    ply: Path
    report: dict
    video: Path | None = None  # filled by render_views
    plot: Path | None = None


def _write_json(path: Path, data: dict) -> None:
    with atomic_output(path) as f:
        f.write(json.dumps(data, indent=1).encode())


def _public_report(report: dict, staged: StagedInputs) -> dict:
    """The report without server paths: inputs by their uploaded names, the camera file as such."""
    text = json.dumps(report)
    if staged.cameras is not None:
        text = text.replace(json.dumps(str(staged.cameras))[1:-1], "the uploaded camera file")
    text = text.replace(json.dumps(str(staged.folder) + "/")[1:-1], "")
    out = json.loads(text)
    out["inputs"] = list(staged.original_names)
    out.pop("checkpoint", None)
    return out


def run_reconstruction(reconstructor, config: AppConfig, files, camera_file, mode: str, foreground_ratio: float,
                       remove_background: bool, refine_steps: int, cache, progress=None) -> tuple[RunOutputs, SessionCache]:
    """Stage the uploads, reconstruct with the injected model and save ply/splat (the 3D view).
    ``progress(fraction, desc=...)`` reports the stages; ``render_views`` adds the turntable and plot."""
    def step(frac: float, desc: str) -> None:
        if progress is not None:
            progress(frac, desc=desc)

    if mode not in MODES:
        raise gr.Error(f"mode must be one of {', '.join(MODES)}", print_exception=False, duration=None)
    refine_steps = int(refine_steps or 0)
    if not 0 <= refine_steps <= config.max_refine_steps:
        raise gr.Error(f"refinement steps must be between 0 and {config.max_refine_steps}", print_exception=False, duration=None)
    if not 0.3 <= float(foreground_ratio) <= 1.0:
        raise gr.Error("foreground ratio must be between 0.3 and 1.0", print_exception=False, duration=None)
    cache = _ensure(cache, config)
    t0 = time.perf_counter()
    step(0.02, "Checking uploads")
    run_dir = cache.new_run()
    staged = _stage(files, camera_file, run_dir / "inputs", config)
    if mode == "posed" and staged.cameras is None:
        raise gr.Error("posed mode needs a camera file (cameras.json, transforms.json, poses_bounds.npy or "
                       "cameras_sphere.npz)", print_exception=False, duration=None)
    opts = ReconstructOptions(cameras=staged.cameras, mode=mode, refine_steps=refine_steps,
                              mask="auto" if remove_background else "none", foreground_ratio=float(foreground_ratio),
                              device=str(reconstructor.device.type), max_pixels=config.limits.max_pixels)
    step(0.1, "Reconstructing: cameras, network" + (", refinement" if refine_steps else ""))
    try:
        t_net = time.perf_counter()
        result = reconstruct(staged.images, opts, reconstructor=reconstructor)
    except ReconError as e:
        raise gr.Error(str(e), print_exception=False, duration=None) from None
    cache.network_runs += 1
    log.info("network run %d of session %s: %d view(s), mode %s, %.2f s", cache.network_runs, cache.name,
             len(staged.images), result.report.get("mode"), time.perf_counter() - t_net)
    step(0.55, "Saving Gaussians (.ply, .splat)")
    out_dir = run_dir / "output"
    written = write_outputs(result, out_dir, ("ply", "splat"))
    report = _public_report(written.report, staged)
    report["app"] = {"seconds_to_3d": round(time.perf_counter() - t0, 3), "network_runs_in_session": cache.network_runs}
    _write_json(out_dir / "report.json", report)
    cache.result = result
    step(0.6, "3D view ready")
    return RunOutputs(out_dir / "gaussians.splat", out_dir / "gaussians.ply", report), cache


def render_views(out: RunOutputs, cache: SessionCache, config: AppConfig, progress=None) -> RunOutputs:
    """Turntable MP4 (our renderer, orbit around the reconstruction) and the camera plot PNG."""

    def step(frac: float, desc: str) -> None:
        if progress is not None:
            progress(frac, desc=desc)

    t0 = time.perf_counter()
    result, out_dir = cache.result, out.ply.parent
    frames = render_turntable(result.gaussians, result.cameras, config.turntable_frames, config.turntable_size,
                              on_frame=lambda i, n: step(0.6 + 0.33 * i / n, f"Rendering turntable ({i}/{n})"))
    out.video = write_video(frames, out_dir / "turntable.mp4", fps=config.turntable_fps)
    step(0.95, "Plotting cameras")
    out.plot = camera_plot(result.gaussians, result.cameras, out_dir / "cameras.png", result.names)
    out.report["app"]["seconds_views"] = round(time.perf_counter() - t0, 3)
    _write_json(out_dir / "report.json", out.report)
    step(1.0, "Done")
    return out


def export_mesh(cache, faces: int, texture_size: int, up: str):
    """Mesh section callback (a generator) on the cached reconstruction: yields ``(glb, [glb], note)``
    as soon as the GLB is written, then ``(glb, [glb, obj.zip], note)``. The note states the face
    count, the seconds per file and the session's network-run count, which exports never change."""
    settings = MeshSettings(int(faces), int(texture_size), up)
    files = []
    for fmt in ("glb", "obj"):
        out = export_mesh_from_cache(cache, settings, fmt)
        files.append(out)
        log.info("mesh export for session %s: %s, %d faces, texture %d, %s (network runs so far: %d)", cache.name,
                 fmt, out["faces"], settings.texture_size, "cached" if out["cached"] else f"{out['seconds']:.2f} s",
                 cache.network_runs)
        yield str(files[0]["path"]), [str(f["path"]) for f in files], _mesh_note(*files, cache=cache)


def _mesh_note(glb: dict, obj: dict | None = None, *, cache: SessionCache) -> str:
    def took(out: dict) -> str:
        return "from the cache" if out["cached"] else f"in {out['seconds']:.1f} s"

    files = f"GLB {took(glb)}, " + (f"OBJ zip {took(obj)}" if obj else "OBJ zip on its way")
    return (f"Mesh with {glb['faces']} faces: {files}; from the cached reconstruction "
            f"(network runs in this session: {cache.network_runs}).")


def example_files(root: Path, name: str) -> tuple[list[str], str | None, str]:
    """The example's photos and camera file (if any) and the mode to select."""
    folder = root / name
    if not folder.is_dir():
        raise gr.Error(f"example {name!r} is missing from {root}")
    images = sorted(str(p) for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"))
    cams = folder / "cameras.json"
    mode = "posed" if cams.is_file() else ("single" if len(images) == 1 else "unposed")
    return images, (str(cams) if cams.is_file() else None), mode
