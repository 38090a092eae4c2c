"""Camera estimation for unposed photos by structure from motion (pycolmap), and the auto choice.

``estimate_cameras_sfm`` runs COLMAP through pycolmap on the CPU: SIFT extraction, exhaustive
matching with geometric verification, incremental mapping. It keeps the largest reconstruction and
converts its poses at this boundary (``recon.io.colmap.image_camera``): COLMAP stores
``cam_from_world`` (world-to-camera) with OpenCV camera axes, so ``c2w`` is its inverse; ``K`` is
in pixels of the input images (features may be found on a downscaled copy; COLMAP scales them
back). The world frame is the reconstruction's: arbitrary origin, rotation and scale (COLMAP
centres and normalises it); align to another frame with ``recon.core.geometry.align_similarity``.

Camera model: one camera shared by all views, ``SIMPLE_RADIAL`` by default (f, cx, cy, k1). The
photos of one reconstruction almost always come from one camera, and sharing its intrinsics makes
the focal length well constrained even from a handful of views; the one radial term absorbs the
mild distortion of phone and compact lenses, which would otherwise bend the poses. Our
``Cameras`` are pinhole, so ``K`` holds f, cx, cy and the fitted ``k1`` is reported in
``SfmResult.distortion`` (in the same OpenCV names as the COLMAP reader). ``PINHOLE`` (fx, fy, cx,
cy, no distortion) is the option for undistorted or rendered images. The principal point stays at
the image centre (COLMAP does not refine it by default).

``choose_pose_method`` is the ``--mode auto`` decision: one image -> "single"; fewer than
``min_views`` -> "pointmap" (SfM is not run); otherwise SfM is run and accepted when it registered
at least ``min_registered_fraction`` of the views, else "pointmap" with the counts in the reason.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image

from recon.core.errors import ReconError
from recon.io.colmap import image_camera
from recon.io.images import load_image, to_uint8
from renderer.cameras import Cameras

PoseMethod = Literal["sfm", "pointmap", "single"]
CAMERA_MODELS = ("SIMPLE_RADIAL", "PINHOLE")


@dataclass
class SfmOptions:
    """Settings of ``estimate_cameras_sfm`` (COLMAP's defaults unless stated)."""

    camera_model: str = "SIMPLE_RADIAL"  # one shared camera: "SIMPLE_RADIAL" or "PINHOLE"
    focal_px: float | None = None  # prior focal length in pixels of the input images; None = 1.2 x max(W, H)
    refine_focal: bool = True  # let bundle adjustment refine the focal length (prior or not)
    max_image_size: int = 1600  # SIFT runs on a copy whose longer side is at most this (px); -1 = full size (COLMAP: 3200)
    max_num_features: int = 8192  # SIFT features per image
    min_num_inliers: int = 15  # verified matches for an image pair to count
    # 2D-3D inliers to register a further view. COLMAP's default is 30; with few, widely spaced
    # views that rejects most of them (lego, 30 views over the sphere: 11 registered at 30, 24 at
    # 15, rotation errors still under 1.2 degrees).
    min_pose_inliers: int = 15
    num_threads: int = -1  # -1 = all cores
    seed: int = 0  # RANSAC / mapper seed, for repeatable results
    max_seconds: float = -1.0  # stop the mapper after this long; -1 = no limit
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)  # RGBA inputs are composited over this
    verbose: bool = False  # let COLMAP log its INFO lines (hundreds per run) to stderr


@dataclass
class SfmResult:
    """Cameras estimated by structure from motion.

    Attributes:
        cameras: R cameras for the registered views, in ``registered`` order (OpenCV c2w [R,4,4]
            in the reconstruction's world frame and arbitrary scale, K [R,3,3] in pixels of the
            input images), or None when nothing was reconstructed.
        registered: R input indices, ascending; views not listed have no pose (none is invented).
        n_views: number of input views.
        n_points: triangulated 3D points in the kept reconstruction.
        mean_reprojection_error_px: mean reprojection error of those points (input-image pixels);
            nan when nothing was reconstructed.
        mean_track_length: mean number of views that observe a point; 0 when nothing was.
        confidence: in [0, 1]: ``registered fraction x reprojection factor x track factor`` with
            reprojection factor ``max(0, 1 - (err / 4 px)^2)`` (4 px is COLMAP's outlier
            threshold) and track factor ``min(1, mean track length / 3)`` (points seen in only
            two views fix little); 0 when nothing was reconstructed.
        reason: one line: why SfM failed or was weak, or a summary when it worked.
        seconds: wall time of the whole estimate.
        distortion: the shared camera's distortion in OpenCV names (``{"k1": ...}`` for
            SIMPLE_RADIAL, ``{}`` for PINHOLE); ``K`` never absorbs it.
        n_models: how many separate reconstructions COLMAP made (the largest is kept).
    """

    cameras: Cameras | None
    registered: list[int]
    n_views: int
    n_points: int = 0
    mean_reprojection_error_px: float = math.nan
    mean_track_length: float = 0.0
    confidence: float = 0.0
    reason: str = ""
    seconds: float = 0.0
    distortion: dict[str, float] = field(default_factory=dict)
    n_models: int = 0

    @property
    def registered_fraction(self) -> float:
        return len(self.registered) / self.n_views if self.n_views else 0.0


def estimate_cameras_sfm(
    images: Sequence[np.ndarray | torch.Tensor | str | Path],  # V images: [H,W,3|4] float in [0,1], or files
    names: Sequence[str] | None = None,  # V names used in messages; default the file names / "view_<i>"
    workdir: Path | None = None,  # keep COLMAP's files here (images/, database.db, sparse/); None = temporary
    options: SfmOptions | None = None,
) -> SfmResult:
    """Estimate cameras for unposed images by incremental structure from motion (COLMAP, CPU).

    All images must share one size (one camera is shared by all views). Image files are read and
    arrays taken as given; RGBA is composited over ``options.background``. Inside ``workdir``
    (created if needed; files of an earlier run there are replaced) or a temporary directory
    (deleted after), the images are written as ``images/<index>.png``, then SIFT extraction,
    exhaustive matching and incremental mapping run; the reconstruction with the most registered
    images is kept and written to ``sparse/`` when ``workdir`` is given.

    Returns an ``SfmResult`` (cameras of the registered views: OpenCV c2w in the reconstruction's
    world, K in input pixels). Failure to reconstruct is not an error: ``cameras`` is None and
    ``reason`` says why. Raises ``ReconError`` for unusable input (no images, mixed sizes).

    Example::

        result = estimate_cameras_sfm(["a.jpg", "b.jpg", "c.jpg"])
        if result.cameras is not None:
            c2w = result.cameras.c2w  # [R,4,4] for the views result.registered
    """
    opts = options or SfmOptions()
    if opts.camera_model not in CAMERA_MODELS:
        raise ReconError(f"SfM camera model must be one of {', '.join(CAMERA_MODELS)}, got {opts.camera_model!r}")
    if opts.focal_px is not None and not (math.isfinite(opts.focal_px) and opts.focal_px > 0):
        raise ReconError(f"SfM focal length prior must be a positive number of pixels, got {opts.focal_px}")
    start = time.perf_counter()
    n = len(images)
    if n == 0:
        raise ReconError("structure from motion needs at least one image")
    names = list(names) if names is not None else [_default_name(im, i) for i, im in enumerate(images)]
    if len(names) != n:
        raise ReconError(f"{n} images but {len(names)} names")
    if n < 2:
        return SfmResult(None, [], n, reason="SfM needs at least 2 views, got 1", seconds=time.perf_counter() - start)

    owned = workdir is None
    root = Path(tempfile.mkdtemp(prefix="recon_sfm_")) if owned else Path(workdir)
    try:
        width, height = _write_images(images, names, root / "images", opts.background)
        rec, n_models = _run_colmap(root, n, width, height, opts)
        if rec is not None and not owned:
            (root / "sparse").mkdir(exist_ok=True)
            rec.write(str(root / "sparse"))
    finally:
        if owned:
            shutil.rmtree(root, ignore_errors=True)
    result = result_from_reconstruction(rec, [_colmap_name(i) for i in range(n)], names, n_models)
    result.seconds = time.perf_counter() - start
    return result


def result_from_reconstruction(
    rec,  # pycolmap.Reconstruction, or None when mapping made nothing
    image_names: Sequence[str],  # V COLMAP image names, in input order
    names: Sequence[str] | None = None,  # V names for messages; default image_names
    n_models: int = 1,  # how many reconstructions the mapper made (for the reason)
) -> SfmResult:
    """``SfmResult`` for the V inputs from a pycolmap ``Reconstruction`` (``seconds`` left 0).

    The conversion (world-to-camera -> OpenCV c2w, COLMAP intrinsics -> K in pixels of the
    camera's width x height) is the COLMAP reader's, ``recon.io.colmap.image_camera``. Images of
    the reconstruction not in ``image_names`` are ignored.
    """
    n_views = len(image_names)
    names = list(names) if names is not None else list(image_names)
    if rec is None or rec.num_reg_images() == 0:
        why = "no pair of views with enough verified matches to start a model"
        return SfmResult(None, [], n_views, reason=f"SfM reconstructed nothing from {n_views} views ({why})")
    index_of = {name: i for i, name in enumerate(image_names)}
    by_index = {}
    for im in rec.images.values():
        if _has_pose(im) and im.name in index_of:
            by_index[index_of[im.name]] = im
    if not by_index:
        return SfmResult(None, [], n_views, reason=f"SfM registered none of the {n_views} input views")
    registered = sorted(by_index)
    c2w, K, dists = [], [], []
    for i in registered:
        pose, k, dist = image_camera(rec, by_index[i], Path(names[i]))
        c2w.append(pose)
        K.append(k)
        dists.append(dist)
    cam = rec.cameras[by_index[registered[0]].camera_id]
    cameras = Cameras(
        torch.as_tensor(np.stack(c2w), dtype=torch.float32),
        torch.as_tensor(np.stack(K), dtype=torch.float32),
        int(cam.width),
        int(cam.height),
    )
    n_points = int(rec.num_points3D())
    err = float(rec.compute_mean_reprojection_error()) if n_points else math.nan
    track = float(rec.compute_mean_track_length()) if n_points else 0.0
    confidence = sfm_confidence(len(registered), n_views, err, track)
    missing = [names[i] for i in range(n_views) if i not in by_index]
    reason = f"SfM registered {len(registered)} of {n_views} views, {n_points} points, {err:.2f} px mean reprojection error"
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        reason += f"; unregistered: {shown}"
    if n_models > 1:
        reason += f"; kept the largest of {n_models} separate models"
    return SfmResult(cameras, registered, n_views, n_points, err, track, confidence, reason, 0.0, dists[0], n_models)


def sfm_confidence(n_registered: int, n_views: int, mean_error_px: float, mean_track_length: float) -> float:
    """Confidence in [0, 1] of an SfM result (formula in ``SfmResult.confidence``)."""
    if n_views <= 0 or n_registered <= 0 or not math.isfinite(mean_error_px):
        return 0.0
    reprojection = max(0.0, 1.0 - (mean_error_px / 4.0) ** 2)
    track = min(1.0, mean_track_length / 3.0)
    return float(min(1.0, n_registered / n_views) * reprojection * track)


def choose_pose_method(
    n_views: int,
    sfm: SfmResult | None,  # None: SfM has not been run (yet)
    min_views: int = 8,
    min_registered_fraction: float = 0.7,
) -> tuple[PoseMethod, str]:
    """Pose method for ``--mode auto`` and a one-line reason.

    - 1 view: "single".
    - fewer than ``min_views``: "pointmap"; SfM is not worth running (sparse views rarely share
      enough features for COLMAP: 12 lego views spread over the sphere give no model at all).
    - otherwise, with ``sfm`` None: "sfm", meaning "run SfM, then ask again with its result".
    - with a result: "sfm" when it registered at least 2 views and at least
      ``min_registered_fraction`` of them, else "pointmap" naming the counts.

    Typical use::

        method, reason = choose_pose_method(n, None)
        if method == "sfm":
            method, reason = choose_pose_method(n, estimate_cameras_sfm(images))
    """
    if n_views < 1:
        raise ReconError("no input views")
    if n_views == 1:
        return "single", "1 view: single-image reconstruction"
    if n_views < min_views:
        return "pointmap", f"{n_views} views, fewer than {min_views}: cameras from the pointmap head (SfM not run)"
    if sfm is None:
        return "sfm", f"{n_views} views: enough to try structure from motion"
    k = len(sfm.registered)
    if sfm.cameras is None or k < 2 or k < min_registered_fraction * n_views:
        why = sfm.reason or "no reconstruction"
        return "pointmap", (
            f"SfM registered {k} of {n_views} views (needs {math.ceil(min_registered_fraction * n_views)}): "
            f"cameras from the pointmap head ({why})"
        )
    return "sfm", f"SfM registered {k} of {n_views} views (confidence {sfm.confidence:.2f})"


def _run_colmap(root: Path, n: int, width: int, height: int, opts: SfmOptions):
    """Extract, match, map inside ``root``; ``(largest Reconstruction or None, number of models)``."""
    import pycolmap  # lazy: heavy native module

    previous = int(pycolmap.logging.minloglevel)
    if not opts.verbose:
        pycolmap.logging.minloglevel = max(previous, 1)  # 1 = WARNING: COLMAP's INFO lines are noise here
    try:
        return _colmap_stages(pycolmap, root, n, width, height, opts)
    finally:
        pycolmap.logging.minloglevel = previous


def _colmap_stages(pycolmap, root: Path, n: int, width: int, height: int, opts: SfmOptions):
    database = root / "database.db"
    database.unlink(missing_ok=True)
    sparse = root / "sparse_models"
    shutil.rmtree(sparse, ignore_errors=True)
    sparse.mkdir(parents=True)

    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = opts.camera_model
    if opts.focal_px is not None:
        f, cx, cy = float(opts.focal_px), width / 2.0, height / 2.0
        reader.camera_params = f"{f},{cx},{cy},0" if opts.camera_model == "SIMPLE_RADIAL" else f"{f},{f},{cx},{cy}"
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.max_image_size = opts.max_image_size
    extraction.num_threads = opts.num_threads
    extraction.use_gpu = False
    extraction.sift.max_num_features = opts.max_num_features
    pycolmap.extract_features(
        database, root / "images", image_names=[_colmap_name(i) for i in range(n)], camera_mode=pycolmap.CameraMode.SINGLE,
        reader_options=reader, extraction_options=extraction, device=pycolmap.Device.cpu,
    )

    matching = pycolmap.FeatureMatchingOptions()
    matching.num_threads = opts.num_threads
    matching.use_gpu = False
    verification = pycolmap.TwoViewGeometryOptions()
    verification.min_num_inliers = opts.min_num_inliers
    verification.ransac.random_seed = opts.seed
    pycolmap.match_exhaustive(
        database, matching_options=matching, verification_options=verification, device=pycolmap.Device.cpu
    )

    mapping = pycolmap.IncrementalPipelineOptions()
    mapping.num_threads = opts.num_threads
    mapping.random_seed = opts.seed
    mapping.min_num_matches = opts.min_num_inliers
    mapping.min_model_size = 2  # keep small models too: the caller judges them by their counts
    mapping.ba_refine_focal_length = opts.refine_focal
    mapping.mapper.abs_pose_refine_focal_length = opts.refine_focal
    mapping.mapper.abs_pose_min_num_inliers = opts.min_pose_inliers
    if opts.max_seconds > 0:
        mapping.max_runtime_seconds = opts.max_seconds
    models = pycolmap.incremental_mapping(database, root / "images", sparse, options=mapping)
    if not models:
        return None, 0
    best = max(models.values(), key=lambda r: (r.num_reg_images(), r.num_points3D()))
    return best, len(models)


# ---- images ------------------------------------------------------------------------------------


def _colmap_name(i: int) -> str:
    """The file name of input ``i`` inside COLMAP's image folder."""
    return f"{i:05d}.png"


def _default_name(image, i: int) -> str:
    return Path(image).name if isinstance(image, (str, Path)) else f"view_{i}"


def _write_images(images, names, folder: Path, background) -> tuple[int, int]:
    """Write every image as ``folder/<index>.png`` (8-bit RGB); return the shared ``(W, H)``."""

    folder.mkdir(parents=True, exist_ok=True)
    size = None
    for i, image in enumerate(images):
        if isinstance(image, (str, Path)):
            rgb, alpha = load_image(image)
            rgba = rgb if alpha is None else torch.cat([rgb, alpha], dim=-1)
        elif isinstance(image, torch.Tensor):
            rgba = image.detach().float().cpu()
        else:
            rgba = torch.as_tensor(np.asarray(image, dtype=np.float32))
        if rgba.ndim != 3 or rgba.shape[-1] not in (3, 4):
            raise ReconError(f"image {names[i]} must be [H,W,3] or [H,W,4], got {tuple(rgba.shape)}")
        if rgba.shape[-1] == 4:
            a = rgba[..., 3:4]
            rgba = rgba[..., :3] * a + torch.tensor(background, dtype=rgba.dtype) * (1 - a)
        hw = (int(rgba.shape[1]), int(rgba.shape[0]))
        if size is None:
            size = hw
        elif hw != size:
            raise ReconError(
                f"SfM shares one camera across views, so images must share one size: {names[0]} is "
                f"{size[0]}x{size[1]}, {names[i]} is {hw[0]}x{hw[1]}"
            )
        Image.fromarray(to_uint8(rgba)).save(folder / _colmap_name(i))
    return size


def _has_pose(image) -> bool:
    attr = image.has_pose
    return bool(attr() if callable(attr) else attr)
