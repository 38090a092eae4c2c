"""The reconstruction pipeline: load -> preprocess -> cameras -> predict -> refine -> save.

``reconstruct(inputs, options)`` is the Python API behind ``recon reconstruct`` and the batch jobs;
it returns a ``ReconstructResult`` whose ``.save(dir, formats)`` writes the output contract of
DESIGN.md (``gaussians.ply``, ``cameras.json``, requested exports, ``report.json``).

Modes (``options.mode``):

- ``posed``: cameras come from ``options.cameras`` or from a dataset folder given as the input. The
  result stays in that world frame and units.
- ``unposed``: no cameras; the model's pointmap head gives them. World = the first camera's frame,
  units = the normalised pointmap's (mean distance of its confident points to the first camera = 1).
- ``single``: one photo; a canonical camera looks at the world origin from ``SINGLE_DISTANCE`` along
  +z (OpenCV, so the camera sits at z = -distance), with the EXIF focal length or the default FoV.
- ``auto``: ``posed`` when cameras are available, ``single`` for one photo; otherwise structure from
  motion (pycolmap) when there are enough views and it registers enough of them, else ``unposed``.
  ``report.json`` says which and why, with SfM's confidence.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from recon.data.types import Views
from recon.errors import ReconError
from recon.eval.interface import Mesh
from renderer import Cameras, Gaussians

MODES = ("auto", "posed", "unposed", "single")
FORMATS = ("ply", "splat", "glb", "obj")
MESH_FILES = {"glb": "mesh.glb", "obj": "mesh.obj.zip"}
SINGLE_DISTANCE = 2.5  # canonical-camera distance to the origin, world units (single-image mode)


@dataclass
class ReconstructOptions:
    cameras: Path | None = None  # camera file or dataset folder for the inputs (posed)
    mode: str = "auto"
    views: list[int | str] | None = None  # input views to use (indices or file names)
    refine_steps: int = 0
    device: str = "auto"
    checkpoint: Path | None = None  # default checkpoints/default
    # single: auto (alpha, else GrabCut) | alpha | grabcut | none; several images: alpha channels are the
    # masks (carving, unposed pose, photo textures) whenever every image has one, unless "none"
    mask: str = "auto"
    foreground_ratio: float = 0.85  # object fill of the crop (single mode)
    max_pixels: int = 40_000_000
    sfm_min_views: int = 8
    # mesh exports start from the Gaussians (render-free TSDF) or the triplane SDF (posed/single input).
    # Gaussians by default: with checkpoints/default they score Chamfer-L1 0.056 vs 0.084 for the SDF's
    # near-blob on 10 synthetic-val objects (docs/export_accuracy.md)
    mesh_from: str = "gaussians"
    # texture colours of mesh exports: "auto" projects the input photos (full resolution, visibility
    # tested) for posed input (given or SfM cameras) and uses the model's colours otherwise; "photos"
    # also for unposed/single input (cameras from the model); "model": the Gaussians' / SDF's colours
    texture_from: str = "auto"


@dataclass
class ReconstructResult:
    """Gaussians and input cameras in the output world frame (see the module docstring), the input
    names and the report (mode, pose method, timings, counts, warnings).

    ``mesh_source`` (cached, computed on first use by ``mesh()``) is what mesh exports start from:
    the Gaussians (TSDF fusion), or with ``mesh_from="sdf"`` the triplane SDF's mesh for posed and
    single-image input (world frame). ``photos``: the input views (full-resolution images, cameras,
    foreground masks from the alpha channel when every image has one) that mesh exports project
    onto the surface for its texture, or None to use the model's colours."""

    gaussians: Gaussians
    cameras: Cameras
    names: list[str]
    report: dict = field(default_factory=dict)
    make_mesh: Callable[[], Mesh] | None = None
    photos: Views | None = None
    _mesh: Mesh | None = None

    def mesh_source(self) -> Mesh | Gaussians:
        if self.make_mesh is None:
            return self.gaussians
        if self._mesh is None:
            t0 = time.perf_counter()
            self._mesh = self.make_mesh()
            self.report.setdefault("timings", {})["mesh"] = time.perf_counter() - t0
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

    def export_mesh(self, path, options=None) -> dict:
        """Write a game-ready mesh (``recon.export.export_mesh``; ``path`` one path or a list, one per
        format): +Y up from ``up_direction``, texture from ``photos`` when kept; returns its report."""
        from recon.export import MeshExportOptions, export_mesh

        opts = options if options is not None else MeshExportOptions()
        opts = dataclasses.replace(opts, up=self.up_direction())
        return export_mesh(self.mesh_source(), path, opts, photos=self.photos)

    def save(self, out_dir: str | Path, formats: tuple[str, ...] | list[str] = ("ply",), mesh_options=None) -> list[Path]:
        """Write ``gaussians.ply`` (always), the other ``formats``, ``cameras.json`` and ``report.json``
        (last) into ``out_dir``; every file is written atomically. ``mesh_options``: a
        ``recon.export.MeshExportOptions`` for glb/obj (default: 20k faces, 1024 texture, +Y up)."""
        from recon.io import write_cameras_json
        from renderer.io.ply import write_ply
        from renderer.io.splat import write_splat

        out = Path(out_dir)
        if out.exists() and not out.is_dir():
            raise ReconError(f"{out}: output path exists and is not a folder")
        bad = [f for f in formats if f not in FORMATS]
        if bad:
            raise ReconError(f"--export: unknown format(s) {', '.join(bad)}; available: {', '.join(FORMATS)}")
        out.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        written = [out / "gaussians.ply"]
        write_ply(written[0], self.gaussians)
        if "splat" in formats:
            written.append(out / "gaussians.splat")
            write_splat(written[-1], self.gaussians)
        mesh_formats = [fmt for fmt in MESH_FILES if fmt in formats]
        if mesh_formats:  # one surface, clean-up, UV layout and texture for every mesh format
            rep = self.export_mesh([out / MESH_FILES[fmt] for fmt in mesh_formats], mesh_options)
            written.extend(Path(f) for f in rep["files"])
            for fmt in mesh_formats:
                self.report.setdefault("meshes", {})[fmt] = {k: rep[k] for k in ("faces", "vertices", "texture_size",
                                                                                 "colors_from", "topology")}
            self.report.setdefault("timings", {})["mesh_export"] = {k: round(v, 4) for k, v in rep["seconds"].items()}
        written.append(write_cameras_json(out / "cameras.json", self.cameras, files=self.names,
                                          extra={"mode": self.report.get("mode"),
                                                 "pose_method": self.report.get("pose_method")}))
        self.report.setdefault("timings", {})["export"] = round(time.perf_counter() - t0, 4)
        self.report["outputs"] = [p.name for p in written] + ["report.json"]
        from renderer.io.atomic import atomic_output

        with atomic_output(out / "report.json") as f:
            f.write(json.dumps(self.report, indent=1).encode())
        return [*written, out / "report.json"]


def _device(name: str) -> torch.device:
    from recon.eval.runner import resolve_device

    return resolve_device(name)


def _select(items: list, views: list[int | str] | None, names: list[str]) -> list[int]:
    if views is None:
        return list(range(len(items)))
    idx = []
    for v in views:
        if isinstance(v, int):
            if not 0 <= v < len(items):
                raise ReconError(f"--views: index {v} out of range (0..{len(items) - 1})")
            idx.append(v)
        elif v in names:
            idx.append(names.index(v))
        else:
            raise ReconError(f"--views: no input named {v!r}")
    return idx


def _is_dataset_folder(path: Path) -> bool:
    from recon.io import FOLDER_FILES

    return path.is_dir() and (any((path / f).exists() for f in FOLDER_FILES) or (path / "sparse").is_dir())


def _composite(img) -> torch.Tensor:
    """``[H, W, 3]`` colour with the alpha channel (if any) composited over white."""
    from recon.pipeline.preprocess import composite_over

    rgb = torch.as_tensor(img.rgb).float()
    return rgb if img.alpha is None else composite_over(rgb, torch.as_tensor(img.alpha).float())


def alpha_masks(images) -> torch.Tensor | None:
    """Foreground masks ``[V, H, W, 1]`` from the images' alpha channels when every image has one, else None."""
    if not images or any(im.alpha is None for im in images):
        return None
    return torch.stack([torch.as_tensor(im.alpha).float() for im in images])[..., None]


def _input_masks(images, opts: ReconstructOptions) -> torch.Tensor | None:
    """The masks of several input images: their alpha channels (``alpha_masks``) unless ``--mask none``."""
    return alpha_masks(images) if opts.mask != "none" else None


def views_from_images(images, cameras: Cameras, names: list[str] | None = None, use_alpha: bool = True) -> Views:
    """``Views`` of loaded images: colour composited over white, alpha channels as foreground masks
    when every image has one and ``use_alpha`` (silhouette carving and the photo texture bake use them)."""
    masks = alpha_masks(images) if use_alpha else None
    return Views(torch.stack([_composite(im) for im in images]), cameras, masks=masks,
                 names=list(names) if names is not None else [im.name for im in images])


def _load_posed(inputs: list[Path], opts: ReconstructOptions, warnings: list[str]):
    """Images and cameras for posed input: a dataset folder as the only input, or ``--cameras``."""
    from recon.io import read_cameras
    from recon.pipeline.inputs import load_images

    cam_source = opts.cameras if opts.cameras is not None else inputs[0]
    cset = read_cameras(cam_source)
    cam_names = [p.name for p in cset.image_paths]
    if opts.cameras is None:  # dataset folder: its own image list
        paths = list(cset.image_paths)
        idx = _select(paths, opts.views, cam_names)
        images = load_images([paths[i] for i in idx], max_pixels=opts.max_pixels, exif_orientation=False)
        cams = cset.cameras[idx]
    else:
        images = load_images(inputs, max_pixels=opts.max_pixels, exif_orientation=False)
        names = [im.name for im in images]
        if all(n in cam_names for n in names):
            order = [cam_names.index(n) for n in names]
        elif len(images) == len(cset.cameras):
            order = list(range(len(images)))
            warnings.append("image names do not match the camera file; cameras taken in file order")
        else:
            raise ReconError(f"{cam_source}: {len(cset.cameras)} cameras for {len(images)} images "
                             "(names do not match either)")
        idx = _select(images, opts.views, names)
        images = [images[i] for i in idx]
        cams = cset.cameras[[order[i] for i in idx]]
    sizes = {(im.rgb.shape[1], im.rgb.shape[0]) for im in images}
    if len(sizes) != 1:
        raise ReconError(f"posed input images must share one size, got {sorted(sizes)}")
    (W, H), = sizes
    if (cams.width, cams.height) != (W, H):
        cams = cams.resize(W, H)  # a camera file for another resolution of the same photos
        warnings.append(f"cameras given for {cset.cameras.width}x{cset.cameras.height}, images are {W}x{H}: K rescaled")
    cams.validate(source=str(cam_source))
    return images, cams


def reconstruct(inputs: list[str | Path] | str | Path, options: ReconstructOptions | None = None,
                reconstructor=None) -> ReconstructResult:
    """Run the pipeline on ``inputs`` (image files, a folder of images, or a dataset folder).

    ``reconstructor``: an already loaded ``recon.reconstructor.Reconstructor`` (the app injects its
    own); default: load ``options.checkpoint``. Raises ``ReconError`` for bad input (one line)."""
    from recon.pipeline.inputs import default_intrinsics, load_images

    opts = options or ReconstructOptions()
    if opts.mode not in MODES:
        raise ReconError(f"--mode must be one of {', '.join(MODES)}, got {opts.mode!r}")
    if opts.mesh_from not in ("gaussians", "sdf"):
        raise ReconError(f"--mesh-from must be gaussians or sdf, got {opts.mesh_from!r}")
    if opts.texture_from not in ("auto", "photos", "model"):
        raise ReconError(f"--texture-from must be auto, photos or model, got {opts.texture_from!r}")
    if opts.refine_steps < 0:
        raise ReconError(f"--refine-steps must be >= 0, got {opts.refine_steps}")
    paths = [Path(p) for p in ([inputs] if isinstance(inputs, (str, Path)) else inputs)]
    if not paths:
        raise ReconError("no inputs given")
    for p in paths:
        if not p.exists():
            raise ReconError(f"{p}: no such file or folder")
    timings: dict[str, float] = {}
    warnings: list[str] = []
    report: dict = {"inputs": [str(p) for p in paths], "warnings": warnings, "timings": timings}
    t_all = time.perf_counter()

    # ---- load (+ cameras when given) --------------------------------------------------------------
    t0 = time.perf_counter()
    posed_available = opts.cameras is not None or (len(paths) == 1 and _is_dataset_folder(paths[0]))
    if opts.mode == "posed" and not posed_available:
        raise ReconError("--mode posed needs cameras: pass --cameras FILE or a dataset folder")
    mode = opts.mode
    if mode == "auto":
        mode = "posed" if posed_available else None
    cams = None
    if mode == "posed":
        images, cams = _load_posed(paths, opts, warnings)
    else:
        images = load_images(paths, max_pixels=opts.max_pixels, same_size=False)
        idx = _select(images, opts.views, [im.name for im in images])
        images = [images[i] for i in idx]
    names = [im.name for im in images]
    timings["load"] = time.perf_counter() - t0
    if mode is None:
        mode = "single" if len(images) == 1 else "unposed"  # "unposed" may still become SfM below
    if mode == "single" and len(images) != 1:
        raise ReconError(f"--mode single takes one image, got {len(images)}")
    if mode == "unposed" and len(images) < 2:
        raise ReconError("--mode unposed needs at least 2 images (use --mode single for one)")
    report["mode"] = mode

    # ---- model ------------------------------------------------------------------------------------
    t0 = time.perf_counter()
    device = _device(opts.device)
    if reconstructor is None:
        from recon.reconstructor import Reconstructor

        reconstructor = Reconstructor.from_pretrained(opts.checkpoint or _default_checkpoint(), device=device)
    timings["model_load"] = time.perf_counter() - t0

    # ---- preprocess and cameras -------------------------------------------------------------------
    t0 = time.perf_counter()
    if mode == "posed":
        report["pose_method"] = "given"
        report["pose_reason"] = f"cameras from {opts.cameras or paths[0]}"
        views = views_from_images(images, cams, names, use_alpha=opts.mask != "none")
    elif mode == "single":
        from recon.pipeline.preprocess import foreground_mask, recentre_crop

        im = images[0]
        method = opts.mask if opts.mask != "auto" else "alpha"  # "alpha" falls back to GrabCut itself
        m = foreground_mask(im, method)
        if m.warning:
            warnings.append(m.warning)
        K = default_intrinsics(im.rgb.shape[1], im.rgb.shape[0], im.exif_focal_35mm)
        size = reconstructor.cfg.input_long_side
        prep = recentre_crop(im, torch.as_tensor(m.mask).float(), K, opts.foreground_ratio, out_size=size)
        c2w = torch.eye(4)
        c2w[2, 3] = -SINGLE_DISTANCE
        cams = Cameras(c2w[None], prep.K[None].float(), size, size)
        views = Views(prep.rgb[None].float(), cams, names=names)
        report["pose_method"] = "canonical"
        report["pose_reason"] = "1 view: canonical camera looking at the origin"
    else:
        from recon.pipeline.sfm import choose_pose_method, estimate_cameras_sfm

        rgb = [_composite(im) for im in images]
        sizes = {tuple(r.shape) for r in rgb}
        if len(sizes) != 1:
            raise ReconError(f"unposed input images must share one size, got {sorted(s[1::-1] for s in sizes)}")
        method, reason = choose_pose_method(len(rgb), None, min_views=opts.sfm_min_views)
        if method == "sfm" and opts.mode == "auto":
            sfm = estimate_cameras_sfm([r.numpy() for r in rgb], names)
            timings["sfm"] = sfm.seconds
            report["sfm"] = {"registered": len(sfm.registered), "views": len(rgb), "confidence": sfm.confidence,
                             "reprojection_error_px": sfm.mean_reprojection_error_px, "reason": sfm.reason}
            method, reason = choose_pose_method(len(rgb), sfm, min_views=opts.sfm_min_views)
            if method == "sfm":
                keep = sfm.registered
                if len(keep) < len(rgb):
                    warnings.append(f"SfM left {len(rgb) - len(keep)} view(s) unregistered; they are not used: "
                                    + ", ".join(names[i] for i in range(len(rgb)) if i not in keep))
                names = [names[i] for i in keep]
                views = Views(torch.stack([rgb[i] for i in keep]), sfm.cameras,
                              masks=_input_masks([images[i] for i in keep], opts), names=names)
                report["confidence"] = sfm.confidence
                mode = "posed"
        elif method == "sfm":
            method, reason = "pointmap", "--mode unposed: cameras from the pointmap head"
        report["pose_method"], report["pose_reason"] = method, reason
        report["mode"] = "posed" if method == "sfm" else "unposed"
        if method != "sfm":
            views = None
            unposed_rgb = torch.stack(rgb)
    timings["preprocess"] = time.perf_counter() - t0

    # ---- predict ----------------------------------------------------------------------------------
    t0 = time.perf_counter()
    if report["mode"] == "unposed":
        masks = _input_masks(images, opts)
        rec, cams = reconstructor.reconstruct_unposed(unposed_rgb, masks)
        views = Views(unposed_rgb, cams, masks=masks, names=names)
        report["confidence"] = float(sum(rec.info.get("pose_inlier_ratio", [0.0])) / max(1, len(names)))
        report["pose_masks"] = masks is not None  # alpha masks kept the background out of the pose
    else:
        rec = reconstructor.reconstruct(views)
        report["carved"] = rec.info.get("carved", 0)  # Gaussians outside other views' masks (alpha input)
    g = rec.gaussians
    timings["predict"] = time.perf_counter() - t0

    # ---- refine -----------------------------------------------------------------------------------
    if opts.refine_steps > 0:
        from recon.pipeline.refine import RefineConfig, refine_gaussians
        from recon.reconstructor import model_input_size, resize_views

        t0 = time.perf_counter()
        cfg = reconstructor.cfg
        w, h = model_input_size(views.cameras.width, views.cameras.height, cfg.input_long_side, cfg.input_multiple)
        small_img, small_cams = resize_views(views.images, views.cameras, w, h)
        r = refine_gaussians(g, Views(small_img, small_cams), RefineConfig(steps=opts.refine_steps))
        g = r.gaussians
        timings["refine"] = time.perf_counter() - t0
        report["refine"] = {"steps": r.steps, "seconds": r.seconds, "input_psnr_before": r.psnr_before,
                            "input_psnr_after": r.psnr_after}

    timings["total_before_export"] = time.perf_counter() - t_all
    report.update(views=len(names), gaussians=len(g), device=str(device), checkpoint=reconstructor.info.get("checkpoint"),
                  machine={"platform": platform.platform(), "cpu_count": os.cpu_count(), "torch": torch.__version__})
    make_mesh = None
    report["mesh_from"] = "gaussians"
    if opts.mesh_from == "sdf" and report["mode"] in ("posed", "single") and reconstructor.cfg.triplane_head is not None:
        report["mesh_from"] = "sdf"
        mesh_views = views
        make_mesh = lambda: reconstructor.mesh(mesh_views)
    use_photos = opts.texture_from == "photos" or (opts.texture_from == "auto" and report["mode"] == "posed")
    report["texture_from"] = "photos" if use_photos else "model"
    return ReconstructResult(g, views.cameras, names, report, make_mesh, photos=views if use_photos else None)


def _default_checkpoint() -> Path:
    return Path(__file__).resolve().parents[2] / "checkpoints" / "default"


def run_job(job_dir: Path, out_tmp: Path, options: dict) -> dict:
    """Batch job: reconstruct the images (and optional camera file) in ``job_dir`` into ``out_tmp``.

    ``options``: ``ReconstructOptions`` fields plus ``export`` (list of formats). A camera file
    or dataset layout in the job folder makes it a posed job."""
    opts = dict(options)
    formats = tuple(opts.pop("export", ("ply",)))
    ro = ReconstructOptions(**{k: (Path(v) if k in ("cameras", "checkpoint") and v else v) for k, v in opts.items()})
    result = reconstruct([Path(job_dir)], ro, reconstructor=_job_reconstructor(ro))
    files = result.save(out_tmp, formats)
    report = json.loads((out_tmp / "report.json").read_text())
    (out_tmp / "report.json").unlink()  # the batch writes report.json itself, last
    report["outputs"] = [p.name for p in files]
    return report


def _job_reconstructor(opts: ReconstructOptions):
    return _load_reconstructor(str(opts.checkpoint or _default_checkpoint()), opts.device)


@functools.lru_cache(maxsize=2)
def _load_reconstructor(checkpoint: str, device: str):
    """One model per worker process, loaded on its first job (weights are read once per process)."""
    from recon.reconstructor import Reconstructor

    return Reconstructor.from_pretrained(checkpoint, device=_device(device))
