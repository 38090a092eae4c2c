"""Server-side checks of uploads and copying them into a session folder under safe names.

Nothing a browser sends is trusted: file names are never used as paths (a copy gets a generated
name, or the original base name only when it passes a strict whitelist, so that camera files can
still match images by name), zips are expanded member by member with the same checks, and the
limits on count, bytes and pixels are enforced here, before anything is decoded.
"""

from __future__ import annotations

import re
import shutil
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from recon.pipeline.inputs import IMAGE_SUFFIXES, natural_key

CAMERA_SUFFIXES = (".json", ".npy", ".npz")  # cameras.json / transforms*.json, poses_bounds.npy, cameras_sphere.npz
ZIP_SUFFIXES = (".zip",)
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class UploadError(ValueError):
    """A refused upload; the message is one line meant for the page."""


@dataclass
class UploadLimits:
    max_files: int = 32  # images per reconstruction (after expanding zips)
    max_file_bytes: int = 25 * 1024 * 1024  # per image / camera file
    max_total_bytes: int = 200 * 1024 * 1024  # all images together (zip members counted uncompressed)
    max_pixels: int = 16_000_000  # per image, read from the header before decoding


@dataclass
class StagedInputs:
    """Uploads copied into ``folder``: image paths (natural order) and the optional camera file."""

    folder: Path
    images: list[Path] = field(default_factory=list)
    cameras: Path | None = None
    original_names: list[str] = field(default_factory=list)


def _upload_path(item) -> Path:
    """Gradio hands over file paths as str or as objects with ``.name`` / ``.path``."""
    for attr in ("path", "name"):
        if hasattr(item, attr) and not isinstance(item, (str, Path)):
            return Path(getattr(item, attr))
    return Path(item)


def _base(name: str) -> str:
    return re.split(r"[\\/]", name)[-1]


def _safe_name(original: str, index: int, suffix: str, taken: set[str]) -> str:
    """The original base name if it is plainly safe and unused, else ``image_NNN<suffix>``."""
    base = _base(original)
    name = base if _SAFE_NAME.match(base) and base.lower().endswith(suffix) else f"image_{index:03d}{suffix}"
    while name.lower() in taken:
        index += 1000
        name = f"image_{index:03d}{suffix}"
    taken.add(name.lower())
    return name


def _check_image_header(path: Path, shown: str, limits: UploadLimits) -> None:
    """Refuse files whose header is not an image we read, or that has too many pixels."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit follows
            with Image.open(path, formats=("JPEG", "PNG", "WEBP", "TIFF")) as im:
                w, h = im.size
    except Image.DecompressionBombError:
        raise UploadError(f"{shown}: the image is too large (far over the limit of {limits.max_pixels / 1e6:g} MP); "
                          "downscale it first") from None
    except Exception:  # noqa: BLE001 (any decoder complaint means: not an image we accept)
        raise UploadError(f"{shown}: not a JPEG, PNG, WebP or TIFF image (or the file is corrupt)") from None
    if w * h > limits.max_pixels:
        raise UploadError(f"{shown}: {w}x{h} is {w * h / 1e6:.1f} MP, over the limit of {limits.max_pixels / 1e6:g} MP; "
                          "downscale it first")


def stage_uploads(files, camera_file, folder: Path, limits: UploadLimits) -> StagedInputs:
    """Check the uploads and copy them into ``folder`` (created, emptied first).

    ``files``: paths (or Gradio file objects) of images and/or zips of images; ``camera_file``: one
    camera file or None. Raises ``UploadError`` with a one-line reason naming the upload (its base
    name, never a server path); a refused upload leaves ``folder`` empty."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    try:
        return _stage(files, camera_file, folder, limits)
    except UploadError:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        raise


def _stage(files, camera_file, folder: Path, limits: UploadLimits) -> StagedInputs:
    staged = StagedInputs(folder)
    items = [_upload_path(f) for f in (files or [])]
    if not items:
        raise UploadError("no photos uploaded: drop one or more JPEG/PNG/WebP/TIFF images (or a zip of them)")
    entries: list[tuple[str, object]] = []  # (shown name, source path or (zip, member))
    total = 0
    for src in items:
        shown = _base(src.name)
        suffix = src.suffix.lower()
        if suffix in ZIP_SUFFIXES:
            entries.extend(_zip_members(src, shown, limits))
        elif suffix in IMAGE_SUFFIXES:
            entries.append((shown, src))
        elif suffix in CAMERA_SUFFIXES:
            raise UploadError(f"{shown}: camera files go in the 'Camera file' box, not with the photos")
        else:
            raise UploadError(f"{shown}: only JPEG, PNG, WebP or TIFF images (or a .zip of them) are accepted")
    if len(entries) > limits.max_files:
        raise UploadError(f"{len(entries)} images uploaded; the limit is {limits.max_files}")
    taken: set[str] = set()
    for i, (shown, src) in enumerate(entries):
        suffix = Path(shown).suffix.lower()
        dest = folder / _safe_name(shown, i, suffix, taken)
        if isinstance(src, tuple):
            zf, info = src
            size = info.file_size
            if size > limits.max_file_bytes:
                raise UploadError(f"{shown}: {size / 2**20:.1f} MB, over the limit of {limits.max_file_bytes / 2**20:g} MB")
            try:
                with zf.open(info) as fin, dest.open("wb") as fout:
                    shutil.copyfileobj(fin, fout)
            except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError):
                raise UploadError(f"{shown}: cannot be read from its zip archive (corrupt or unsupported)") from None
        else:
            size = src.stat().st_size
            if size > limits.max_file_bytes:
                raise UploadError(f"{shown}: {size / 2**20:.1f} MB, over the limit of {limits.max_file_bytes / 2**20:g} MB")
            shutil.copyfile(src, dest)
        total += size
        if total > limits.max_total_bytes:
            raise UploadError(f"the photos add up to more than {limits.max_total_bytes / 2**20:g} MB")
        _check_image_header(dest, shown, limits)
        staged.images.append(dest)
        staged.original_names.append(shown)
    order = sorted(range(len(staged.images)), key=lambda k: natural_key(staged.images[k].name))
    staged.images = [staged.images[k] for k in order]
    staged.original_names = [staged.original_names[k] for k in order]
    if camera_file:
        staged.cameras = _stage_camera(_upload_path(camera_file), folder, limits)
    return staged


def _zip_members(src: Path, shown: str, limits: UploadLimits) -> list[tuple[str, tuple]]:
    try:
        zf = zipfile.ZipFile(src)
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError):
        raise UploadError(f"{shown}: not a readable zip archive") from None
    out = []
    for info in infos:
        base = _base(info.filename)
        if info.is_dir() or not base or base.startswith(".") or "__MACOSX" in info.filename:
            continue
        if Path(base).suffix.lower() not in IMAGE_SUFFIXES:
            continue  # notes, camera files and the like inside a zip are ignored
        out.append((base, (zf, info)))
        if len(out) > limits.max_files:
            raise UploadError(f"{shown}: more than {limits.max_files} images in the zip; the limit is {limits.max_files}")
    if not out:
        raise UploadError(f"{shown}: the zip holds no JPEG, PNG, WebP or TIFF images")
    return out


def _stage_camera(src: Path, folder: Path, limits: UploadLimits) -> Path:
    shown = _base(src.name)
    suffix = src.suffix.lower()
    if suffix not in CAMERA_SUFFIXES:
        raise UploadError(f"{shown}: camera files are cameras.json, transforms.json, poses_bounds.npy or "
                          "cameras_sphere.npz")
    if src.stat().st_size > limits.max_file_bytes:
        raise UploadError(f"{shown}: camera file over the limit of {limits.max_file_bytes / 2**20:g} MB")
    # The readers tell JSON flavours apart by content; .npy/.npz by these conventional names.
    name = {".json": "cameras_upload.json", ".npy": "poses_bounds.npy", ".npz": "cameras_sphere.npz"}[suffix]
    cam_dir = folder / "_cameras"
    cam_dir.mkdir(exist_ok=True)
    dest = cam_dir / name
    shutil.copyfile(src, dest)
    return dest
