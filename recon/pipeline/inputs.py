"""Pipeline stage 1: load the input photos, and intrinsics for photos that come without cameras.

``load_images(inputs)`` reads image files and/or folders into ``LoadedImage``s: colour as float32
RGB in [0, 1], the alpha channel (if any) as a mask, EXIF orientation applied, and the EXIF
35 mm-equivalent focal length when the file has one. Every way a user's file can be unusable is a
one-line ``FileFormatError`` (a ``ReconError``: the CLI exits with code 2) that names the file.

``default_intrinsics(width, height, exif_focal_35mm)`` gives ``K`` (pixels, OpenCV, principal
point at the image centre) from the EXIF focal length or, without one, a default field of view.

Example::

    images = load_images("photos/")                     # sorted naturally: img2 before img10
    K = default_intrinsics(*images[0].size, images[0].exif_focal_35mm)
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import ExifTags, Image, ImageOps
from torch import Tensor

from renderer.cameras import focal_from_fov, intrinsics_matrix
from renderer.errors import FileFormatError, ReconError

# Pillow plugins we open, by content. The JPEG plugin also opens MPO (the multi-picture JPEG that
# many cameras and phones write; its first frame is an ordinary JPEG).
FORMATS = ("JPEG", "PNG", "WEBP", "TIFF")
# Files a folder listing picks up (case-insensitive). Explicitly named files are judged by content.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".png", ".webp", ".tif", ".tiff")
# Image files we do not read: in a folder these are refused rather than silently skipped.
UNSUPPORTED_SUFFIXES = (".gif", ".bmp", ".heic", ".heif", ".avif", ".jp2", ".jxl", ".tga", ".exr", ".hdr",
                        ".dng", ".cr2", ".nef", ".arw", ".psd", ".svg")
DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_FOV_DEG = 50.0  # on the long side; a 38.6 mm lens in 35 mm terms (a "normal" lens)
FILM_LONG_SIDE_MM = 36.0  # the 35 mm frame is 36 x 24 mm

_SUPPORTED = "JPEG, PNG, WebP or TIFF"
# Magic numbers of common image formats we do not read, to name them in the error.
_MAGIC = ((b"GIF8", "GIF"), (b"BM", "BMP"), (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"), (b"\xff\x4f\xff\x51", "JPEG 2000"),
          (b"8BPS", "Photoshop"), (b"%PDF", "PDF"), (b"\xff\x0a", "JPEG XL"), (b"\x00\x00\x00\x0cJXL ", "JPEG XL"))


@dataclass
class LoadedImage:
    """One input photo as displayed (EXIF orientation applied).

    Attributes:
        rgb: [H, W, 3] float32 colour in [0, 1] (straight, not premultiplied by alpha).
        alpha: [H, W] float32 opacity in [0, 1] (1 = opaque), or None when the file has no alpha
            channel and no transparent palette entry/colour key.
        name: the file name, without folders (for reports and ``cameras.json``).
        exif_focal_35mm: EXIF ``FocalLengthIn35mmFilm`` in millimetres, or None if absent or 0.
        path: the file that was read.
    """

    rgb: Tensor
    alpha: Tensor | None
    name: str
    exif_focal_35mm: float | None = None
    path: Path | None = None

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` in pixels."""
        return int(self.rgb.shape[1]), int(self.rgb.shape[0])


def natural_key(name: str) -> list:
    """Sort key that orders digit runs by value: ``img2`` before ``img10`` (case-insensitive)."""
    parts = re.split(r"(\d+)", name)
    return [int(p) if i % 2 else p.casefold() for i, p in enumerate(parts)] + [name]


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in ``folder`` (not sub-folders), sorted naturally, hidden files skipped.

    Files are picked by suffix (``IMAGE_SUFFIXES``); other files (camera files, notes) are ignored,
    but a file with an unsupported image suffix (``.heic``, ``.gif``, ...) is refused so that no photo
    is dropped silently. Raises ``FileFormatError`` when the folder holds no image.
    """
    folder = Path(folder)
    files = []
    for p in folder.iterdir():
        if p.name.startswith(".") or not p.is_file():
            continue
        suffix = p.suffix.lower()
        if suffix in UNSUPPORTED_SUFFIXES:
            raise FileFormatError(p, f"{suffix[1:].upper()} images are not supported; convert to {_SUPPORTED}")
        if suffix in IMAGE_SUFFIXES:
            files.append(p)
    if not files:
        raise FileFormatError(folder, f"no images in this folder (looked for {', '.join(IMAGE_SUFFIXES)})")
    return sorted(files, key=lambda p: natural_key(p.name))


def load_images(
    inputs: str | Path | Sequence[str | Path],  # image files and/or folders of images
    *,
    same_size: bool = False,  # refuse images of different sizes (after EXIF orientation)
    max_pixels: int = DEFAULT_MAX_PIXELS,  # refuse larger images before decoding them
    exif_orientation: bool = True,  # False: keep the stored pixel grid (dataset poses refer to it)
) -> list[LoadedImage]:
    """Read photos into ``LoadedImage``s, in the given order (folders expand to sorted listings).

    Formats are recognised from the content, not the suffix: JPEG (and MPO), PNG (8/16-bit,
    grayscale, grayscale+alpha, palette with or without transparency, RGB, RGBA), WebP and TIFF
    (8/16-bit). 16-bit grayscale is scaled by 1/65535; 16-bit colour is reduced to 8 bits by Pillow.
    Grayscale becomes three equal channels. Alpha, a palette's transparent entries and a colour key
    become ``alpha``. The first frame of animated/multi-page files is used.

    Raises ``FileFormatError`` (one line, naming the file) for: no images, a missing file, content
    that is not a supported image, a truncated or corrupt file (the whole image is decoded), more
    than ``max_pixels`` pixels (checked from the header, before decoding), and, with
    ``same_size``, images of different sizes (``ReconError``).

    ``max_pixels`` is our own limit, applied per call; Pillow's process-wide guard
    (``Image.MAX_IMAGE_PIXELS``, which refuses above twice its value, about 179 MP) is left as it
    is, so a ``max_pixels`` above that is capped by it.
    """
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    paths: list[Path] = []
    for item in inputs:
        p = Path(item)
        paths.extend(list_images(p) if p.is_dir() else [p])
    if not paths:
        raise ReconError("no input images given")
    images = [load_one(p, max_pixels=max_pixels, exif_orientation=exif_orientation) for p in paths]
    if same_size:
        check_same_size(images)
    return images


def check_same_size(images: Sequence[LoadedImage]) -> None:
    """Raise ``ReconError`` naming two images whose sizes differ."""
    first = images[0]
    for im in images[1:]:
        if im.size != first.size:
            (w0, h0), (w1, h1) = first.size, im.size
            raise ReconError(f"images differ in size: {first.name} is {w0}x{h0} but {im.name} is {w1}x{h1}; "
                             "these inputs must all have one size")


def load_one(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS, exif_orientation: bool = True) -> LoadedImage:
    """Read one image file; see ``load_images`` for formats, conventions and errors."""
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(path, "image file not found" if not path.exists() else "not a file")
    try:
        with warnings.catch_warnings():
            # Our own max_pixels check below replaces Pillow's size warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path, formats=FORMATS) as im:  # parses the header only
                width, height = im.size
                if width * height > max_pixels:
                    raise FileFormatError(path, f"image is {width}x{height} ({width * height / 1e6:.0f} MP), over the "
                                                f"limit of {max_pixels / 1e6:g} MP; downscale it first")
                im.load()  # a full decode: truncated or corrupt data fails here
                focal = _exif_focal_35mm(im)
                if exif_orientation:
                    im = ImageOps.exif_transpose(im)
                rgb, alpha = _to_arrays(im)
    except FileFormatError:
        raise
    except Image.DecompressionBombError:
        raise FileFormatError(path, f"image too large: its header declares over {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} MP, "
                                    f"over the limit of {max_pixels / 1e6:g} MP; downscale it first") from None
    except Image.UnidentifiedImageError:
        raise FileFormatError(path, f"not a {_SUPPORTED} image{_sniff(path)}") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:  # Pillow's errors for broken data
        raise FileFormatError(path, f"unreadable or truncated image ({e})") from None
    return LoadedImage(
        rgb=torch.from_numpy(rgb),
        alpha=None if alpha is None else torch.from_numpy(alpha),
        name=path.name,
        exif_focal_35mm=focal,
        path=path,
    )


def default_intrinsics(
    width: int,
    height: int,
    exif_focal_35mm: float | None = None,  # mm, 35 mm-equivalent (EXIF FocalLengthIn35mmFilm)
    default_fov_deg: float = DEFAULT_FOV_DEG,  # full field of view across the long side
) -> Tensor:
    """``K [3, 3]`` float32 in pixels of a ``width`` x ``height`` image, for photos without cameras.

    Square pixels (fx = fy) and the principal point at the image centre ``(W/2, H/2)`` (pixel
    centres at +0.5, so this is the middle of the pixel grid).

    Focal length: the 35 mm-equivalent focal length refers to a 36 x 24 mm frame whose long side is
    36 mm; the photo's long side is taken to span the same field of view, so
    ``f_px = f_35mm / 36 * max(W, H)``. This keeps the convention independent of the photo's
    orientation and aspect ratio (a cropped-to-square or 4:3 photo keeps its long-side field of
    view, which is how phones report the tag). Without a usable EXIF value (None, 0, non-finite),
    the long side spans ``default_fov_deg`` (50 degrees, a 38.6 mm lens in 35 mm terms; phone main
    cameras are wider, about 26 mm or 69 degrees, but then their EXIF tag is usually present).
    """
    long_side = max(int(width), int(height))
    if exif_focal_35mm is not None and math.isfinite(exif_focal_35mm) and exif_focal_35mm > 0:
        f = exif_focal_35mm / FILM_LONG_SIDE_MM * long_side
    else:
        f = focal_from_fov(math.radians(default_fov_deg), long_side)
    return intrinsics_matrix(f, f, width / 2.0, height / 2.0)


# ---- helpers ----------------------------------------------------------------------------------


def _exif_focal_35mm(im: Image.Image) -> float | None:
    """EXIF FocalLengthIn35mmFilm (mm) from the Exif IFD (or, in odd files, IFD0); None if absent/0."""
    try:
        exif = im.getexif()
        value = exif.get_ifd(ExifTags.IFD.Exif).get(ExifTags.Base.FocalLengthIn35mmFilm)
        if value is None:
            value = exif.get(ExifTags.Base.FocalLengthIn35mmFilm)
        value = float(value) if value is not None else 0.0
    except (ValueError, TypeError, KeyError, OSError, SyntaxError, ZeroDivisionError):
        # malformed EXIF must not make a readable photo unusable
        return None
    return value if math.isfinite(value) and value > 0 else None


def _to_arrays(im: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """``(rgb [H, W, 3], alpha [H, W] or None)`` float32 in [0, 1] from any Pillow mode we open."""
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):  # 16-bit grayscale (mode I: 16-bit PNG in old Pillow)
        gray = np.clip(np.asarray(im, dtype=np.float32) / 65535.0, 0.0, 1.0)
        return np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=-1)), None
    if im.mode == "F":  # float TIFF: taken as linear-in-file values in [0, 1]
        gray = np.clip(np.nan_to_num(np.asarray(im, dtype=np.float32)), 0.0, 1.0)
        return np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=-1)), None
    has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
    arr = np.asarray(im.convert("RGBA" if has_alpha else "RGB"), dtype=np.float32) / 255.0
    if has_alpha:
        return np.ascontiguousarray(arr[..., :3]), np.ascontiguousarray(arr[..., 3])
    return arr, None


def _sniff(path: Path) -> str:
    """`` (it is a GIF file)``-style hint for a file Pillow refused, or ``""``."""
    try:
        with path.open("rb") as f:
            head = f.read(32)
    except OSError:
        return ""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return f" (it is a {kind} file)"
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"hevc", b"avif"):
        return " (it is a HEIC/AVIF file)"
    if not head:
        return " (the file is empty)"
    return ""
