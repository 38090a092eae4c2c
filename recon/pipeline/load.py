"""Stage 1, load: input paths -> decoded images, their names and the given cameras (if any).

Posed input is a dataset folder as the only input, or images with ``options.cameras``; its
cameras are checked and rescaled to the images' size here. Everything else is loaded without
cameras, with EXIF orientation applied (the cameras are found by the next stage).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from recon.core.errors import ReconError
from recon.core.types import Views
from recon.io import FOLDER_FILES, CameraSet, read_cameras
from recon.io.camera_set import did_you_mean, image_key, short_list
from recon.pipeline.inputs import IMAGE_SUFFIXES, LoadedImage, load_images, natural_key
from recon.pipeline.options import MaskSource, Mode, ReconstructOptions
from recon.pipeline.preprocess import composite_over
from renderer import Cameras


@dataclass
class LoadedInputs:
    """The decoded inputs, in the order they will be used.

    Attributes:
        paths: the input paths as given.
        images: the picked images (``options.views``), each with its alpha channel when it has one.
        cameras: their cameras (OpenCV ``c2w``, ``K`` in pixels of the images) when given, else None.
        camera_source: the file or folder the cameras came from, else None.
        warnings: one line each, for the report.
        seconds: wall time of the stage.
    """

    paths: list[Path]
    images: list[LoadedImage]
    cameras: Cameras | None = None
    camera_source: Path | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def names(self) -> list[str]:
        return [im.name for im in self.images]


def input_paths(inputs: list[str | Path] | str | Path) -> list[Path]:
    """The input list as paths; an empty list or a missing path is a ``ReconError``."""
    paths = [Path(p) for p in ([inputs] if isinstance(inputs, (str, Path)) else inputs)]
    if not paths:
        raise ReconError("no inputs given")
    for p in paths:
        if not p.exists():
            raise ReconError(f"{p}: no such file or folder")
    return paths


def is_dataset_folder(path: Path) -> bool:
    """A folder that carries its own cameras (``transforms.json``, COLMAP ``sparse/``, ...)."""
    return path.is_dir() and (any((path / f).exists() for f in FOLDER_FILES) or (path / "sparse").is_dir())


def has_cameras(paths: list[Path], opts: ReconstructOptions) -> bool:
    return opts.cameras is not None or (len(paths) == 1 and is_dataset_folder(paths[0]))


def load_inputs(inputs: list[str | Path] | str | Path, opts: ReconstructOptions) -> LoadedInputs:
    """Stage 1: read the inputs; with cameras (given or in a dataset folder) when the mode uses them."""
    t0 = time.perf_counter()
    paths = input_paths(inputs)
    posed = has_cameras(paths, opts)
    if opts.mode is Mode.POSED and not posed:
        raise ReconError("posed mode needs cameras: a camera file or a dataset folder")
    if opts.mode in (Mode.POSED, Mode.AUTO) and posed:
        loaded = _load_posed(paths, opts)
    else:
        images = load_images(paths, max_pixels=opts.max_pixels, same_size=False)
        idx = select_views(images, opts.views, [im.name for im in images])
        loaded = LoadedInputs(paths, [images[i] for i in idx])
    loaded.seconds = time.perf_counter() - t0
    return loaded


def select_views(items: list, views: tuple[int | str, ...] | None, names: list[str]) -> list[int]:
    """Indices of ``views`` (indices or names) in ``items``; all of them when ``views`` is None."""
    if views is None:
        return list(range(len(items)))
    idx = []
    for v in views:
        if isinstance(v, int):
            if not 0 <= v < len(items):
                raise ReconError(f"views: index {v} out of range (0..{len(items) - 1})")
            idx.append(v)
        elif v in names:
            idx.append(names.index(v))
        else:
            raise ReconError(f"views: no input named {v!r}{did_you_mean(v, names)}")
    return idx


def _load_posed(paths: list[Path], opts: ReconstructOptions) -> LoadedInputs:
    """Images and cameras: a dataset folder as the only input, or image files with ``opts.cameras``."""
    if opts.cameras is None:
        images, cams, cset, warnings = _load_dataset(paths[0], opts)
    else:
        images, cams, cset, warnings = _load_with_camera_file(paths, opts.cameras, opts)
    sizes = {(im.rgb.shape[1], im.rgb.shape[0]) for im in images}
    if len(sizes) != 1:
        raise ReconError(f"posed input images must share one size, got {sorted(sizes)}")
    (W, H), = sizes
    if (cams.width, cams.height) != (W, H):
        cams = cams.resize(W, H)  # a camera file for another resolution of the same photos
        warnings.append(f"cameras given for {cset.cameras.width}x{cset.cameras.height}, images are {W}x{H}: "
                        "K rescaled")
    cam_source = opts.cameras if opts.cameras is not None else paths[0]
    cams.validate(source=str(cam_source))
    return LoadedInputs(paths, images, cams, Path(cam_source), warnings)


def _load_dataset(folder: Path, opts: ReconstructOptions) -> tuple[list[LoadedImage], Cameras, CameraSet, list[str]]:
    """A dataset folder: its camera file's own image list. Images beside the listed ones that have no
    camera are refused (a COLMAP model that left photos unregistered: a warning), unless views are picked."""
    cset = read_cameras(folder)
    warnings: list[str] = []
    if opts.views is None:
        extra = images_without_cameras(cset)
        shown = short_list(p.name for p in extra)
        if extra and cset.source == "colmap":
            warnings.append(f"{len(extra)} image(s) beside the COLMAP model's have no camera in it (not registered) "
                            f"and are not used: {shown}")
        elif extra:
            raise ReconError(f"{cset.path}: no camera for {len(extra)} image(s) in {extra[0].parent}: {shown} "
                             "(add their cameras, remove them, or pick views)")
    all_paths = list(cset.image_paths)
    idx = select_views(all_paths, opts.views, [p.name for p in all_paths])
    images = load_images([all_paths[i] for i in idx], max_pixels=opts.max_pixels, exif_orientation=False)
    return images, cset.cameras[idx], cset, warnings


def _load_with_camera_file(paths: list[Path], cam_file: Path,
                           opts: ReconstructOptions) -> tuple[list[LoadedImage], Cameras, CameraSet, list[str]]:
    """Image files with a camera file given apart: frames matched to images by name (``CameraSet.match_images``),
    by file order only when the file names no images at all and the counts agree."""
    images = load_images(paths, max_pixels=opts.max_pixels, exif_orientation=False)
    names = [im.name for im in images]
    cset = read_cameras(cam_file, image_size=images[0].size)
    warnings: list[str] = []
    frame_keys = {image_key(c) for c in cset.names}
    if cset.unnamed and not any(image_key(n) in frame_keys for n in names):
        if len(cset) != len(images):
            raise ReconError(f"{cam_file}: {len(cset)} cameras for {len(images)} images, and the file names no "
                             "images to match them by")
        order = list(range(len(images)))
        warnings.append(f"{cam_file.name} names no images: cameras taken in file order")
    else:
        order = cset.match_images(names)
    idx = select_views(images, opts.views, names)
    return [images[i] for i in idx], cset.cameras[[order[i] for i in idx]], cset, warnings


def images_without_cameras(cset: CameraSet) -> list[Path]:
    """Image files in the folders of ``cset``'s images (that exist) whose name or stem no frame has."""
    keys = {image_key(n) for n in cset.names}
    folders = sorted({p.parent for p in cset.image_paths if p.parent.is_dir()})
    return [f for d in folders for f in sorted(d.iterdir(), key=lambda q: natural_key(q.name))
            if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in IMAGE_SUFFIXES
            and image_key(f.name) not in keys]


def composite(image: LoadedImage) -> torch.Tensor:
    """``[H, W, 3]`` colour with the alpha channel (if any) composited over white."""
    rgb = torch.as_tensor(image.rgb).float()
    return rgb if image.alpha is None else composite_over(rgb, torch.as_tensor(image.alpha).float())


def alpha_masks(images: list[LoadedImage]) -> torch.Tensor | None:
    """Foreground masks ``[V, H, W, 1]`` from the images' alpha channels when every image has one, else None."""
    if not images or any(im.alpha is None for im in images):
        return None
    return torch.stack([torch.as_tensor(im.alpha).float() for im in images])[..., None]


def input_masks(images: list[LoadedImage], mask: MaskSource) -> torch.Tensor | None:
    """The masks of several input images: their alpha channels (``alpha_masks``) unless masks are off."""
    return alpha_masks(images) if mask is not MaskSource.NONE else None


def views_from_images(images: list[LoadedImage], cameras: Cameras, names: list[str] | None = None,
                      use_alpha: bool = True) -> Views:
    """``Views`` of loaded images: colour composited over white, alpha channels as foreground masks
    when every image has one and ``use_alpha`` (silhouette carving and the photo texture bake use them)."""
    masks = alpha_masks(images) if use_alpha else None
    return Views(torch.stack([composite(im) for im in images]), cameras, masks=masks,
                 names=list(names) if names is not None else [im.name for im in images])
