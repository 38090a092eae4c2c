"""Stage 2, cameras: loaded inputs -> the images the model sees and their cameras.

- posed: the given cameras (``pose_method`` "given");
- single: one photo, recentred on its foreground and cropped square at the model's working size; a
  canonical camera looks at the world origin from ``SINGLE_DISTANCE`` along +z (OpenCV, so the
  camera sits at z = -distance), with the EXIF focal length or the default field of view
  (``pose_method`` "canonical");
- unposed: structure from motion (pycolmap) when there are enough photos and it registers enough
  of them (``pose_method`` "sfm", the result is then posed); otherwise the cameras are left to the
  model's pointmap head in the predict stage (``pose_method`` "pointmap", ``cameras`` None).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import Tensor

from recon.core.errors import ReconError
from recon.pipeline.inputs import default_intrinsics
from recon.pipeline.load import LoadedInputs, composite, input_masks, views_from_images
from recon.pipeline.options import MaskSource, Mode, ReconstructOptions
from recon.pipeline.preprocess import foreground_mask, recentre_crop
from recon.pipeline.sfm import choose_pose_method, estimate_cameras_sfm
from renderer import Cameras

SINGLE_DISTANCE = 2.5  # canonical-camera distance to the origin, world units (single-image mode)


@dataclass
class CameraSolution:
    """What the model will see, and how its cameras were found.

    Attributes:
        mode: POSED (given or SfM cameras), UNPOSED (cameras from the pointmap head) or SINGLE.
        images: [V, H, W, 3] colour in [0, 1], alpha composited over white.
        masks: [V, H, W, 1] foreground in [0, 1], or None.
        names: one name per view.
        cameras: V cameras of W x H (OpenCV), or None when the model is to predict them.
        pose_method: "given", "sfm", "pointmap" or "canonical"; pose_reason: one line why.
        confidence: SfM's confidence when SfM gave the cameras, else None.
        sfm: SfM's counts when it ran, else None.
        warnings: one line each, for the report. seconds: wall time of the stage (SfM included).
    """

    mode: Mode
    images: Tensor
    masks: Tensor | None
    names: list[str]
    cameras: Cameras | None
    pose_method: str
    pose_reason: str
    confidence: float | None = None
    sfm: dict | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    sfm_seconds: float | None = None


def requested_mode(loaded: LoadedInputs, opts: ReconstructOptions) -> Mode:
    """The mode the inputs call for: ``opts.mode``, with AUTO resolved (SfM is decided later)."""
    n = len(loaded.images)
    mode = opts.mode
    if mode is Mode.AUTO:
        mode = Mode.POSED if loaded.cameras is not None else (Mode.SINGLE if n == 1 else Mode.UNPOSED)
    if mode is Mode.SINGLE and n != 1:
        raise ReconError(f"single mode takes one image, got {n}")
    if mode is Mode.UNPOSED and n < 2:
        raise ReconError("unposed mode needs at least 2 images (use single mode for one)")
    return mode


def solve_cameras(loaded: LoadedInputs, opts: ReconstructOptions, working_long_side: int) -> CameraSolution:
    """Stage 2 (see the module docstring); ``working_long_side``: the model's input size (single mode crop)."""
    t0 = time.perf_counter()
    mode = requested_mode(loaded, opts)
    if mode is Mode.POSED:
        views = views_from_images(loaded.images, loaded.cameras, loaded.names, use_alpha=opts.mask is not MaskSource.NONE)
        sol = CameraSolution(Mode.POSED, views.images, views.masks, views.names, views.cameras, "given",
                             f"cameras from {loaded.camera_source}")
    elif mode is Mode.SINGLE:
        sol = _single(loaded, opts, working_long_side)
    else:
        sol = _unposed(loaded, opts)
    sol.seconds = time.perf_counter() - t0
    return sol


def _single(loaded: LoadedInputs, opts: ReconstructOptions, size: int) -> CameraSolution:
    im = loaded.images[0]
    method = opts.mask.value if opts.mask is not MaskSource.AUTO else "alpha"  # "alpha" falls back to GrabCut itself
    m = foreground_mask(im, method)
    K = default_intrinsics(im.rgb.shape[1], im.rgb.shape[0], im.exif_focal_35mm)
    prep = recentre_crop(im, torch.as_tensor(m.mask).float(), K, opts.foreground_ratio, out_size=size)
    c2w = torch.eye(4)
    c2w[2, 3] = -SINGLE_DISTANCE
    cams = Cameras(c2w[None], prep.K[None].float(), size, size)
    return CameraSolution(Mode.SINGLE, prep.rgb[None].float(), None, loaded.names, cams, "canonical",
                          "1 view: canonical camera looking at the origin", warnings=[m.warning] if m.warning else [])


def _unposed(loaded: LoadedInputs, opts: ReconstructOptions) -> CameraSolution:
    names, images = loaded.names, loaded.images
    rgb = [composite(im) for im in images]
    sizes = {tuple(r.shape) for r in rgb}
    if len(sizes) != 1:
        raise ReconError(f"unposed input images must share one size, got {sorted(s[1::-1] for s in sizes)}")
    method, reason = choose_pose_method(len(rgb), None, min_views=opts.sfm_min_views)
    if method == "sfm" and opts.mode is not Mode.AUTO:
        method, reason = "pointmap", "unposed mode: cameras from the pointmap head"
    if method != "sfm":
        return CameraSolution(Mode.UNPOSED, torch.stack(rgb), input_masks(images, opts.mask), names, None, method, reason)
    sfm = estimate_cameras_sfm([r.numpy() for r in rgb], names)
    counts = {"registered": len(sfm.registered), "views": len(rgb), "confidence": sfm.confidence,
              "reprojection_error_px": sfm.mean_reprojection_error_px, "reason": sfm.reason}
    method, reason = choose_pose_method(len(rgb), sfm, min_views=opts.sfm_min_views)
    if method != "sfm":
        note = (f"structure from motion registered only {len(sfm.registered)} of {len(rgb)} views: cameras from the "
                "pointmap head instead")
        return CameraSolution(Mode.UNPOSED, torch.stack(rgb), input_masks(images, opts.mask), names, None, method,
                              reason, sfm=counts, warnings=[note], sfm_seconds=sfm.seconds)
    keep = sfm.registered
    warnings = []
    if len(keep) < len(rgb):
        warnings.append(f"SfM left {len(rgb) - len(keep)} view(s) unregistered; they are not used: "
                        + ", ".join(names[i] for i in range(len(rgb)) if i not in keep))
    return CameraSolution(Mode.POSED, torch.stack([rgb[i] for i in keep]),
                          input_masks([images[i] for i in keep], opts.mask), [names[i] for i in keep], sfm.cameras,
                          "sfm", reason, confidence=sfm.confidence, sfm=counts, warnings=warnings,
                          sfm_seconds=sfm.seconds)
