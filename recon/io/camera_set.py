"""``CameraSet``: cameras read from a file, with the image each one belongs to.

Every reader in ``recon.io`` returns one of these, already converted to the project convention
(``renderer.cameras``: OpenCV axes x right, y down, z forward; ``c2w`` camera-to-world in the
file's own world frame and units; ``K`` in pixels of the images the file describes). Nothing
downstream of a reader sees another convention.

``build_camera_set`` is the one place where readers turn per-frame arrays into a ``CameraSet``:
it validates every pose, applies a view selection, and refuses sets whose images differ in size
(a ``Cameras`` batch shares one width and height).
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from renderer.cameras import Cameras
from renderer.errors import FileFormatError, ReconError

View = int | str  # an index into the set, or an image file name / stem

# Suffixes that ``image_key`` drops: every image format a camera file may name (the readers' and the
# pipeline's). A stored name without one of them (NeRF's ``./train/r_0``) is its own key.
KEY_SUFFIXES = (".png", ".jpg", ".jpeg", ".jpe", ".webp", ".tif", ".tiff")
# Names that readers invent when a file names no images (LLFF/IDR without an image folder: ``000``;
# ``write_cameras_json`` for bare cameras: ``view_000``).
_PLACEHOLDER = re.compile(r"(view_)?\d+")


@dataclass
class CameraSet:
    """C cameras and their images, in the file's frame order.

    Attributes:
        cameras: C cameras (OpenCV axes, c2w [C,4,4], K [C,3,3] in pixels of width x height).
        image_paths: C paths, resolved against the camera file's folder; they may not exist.
        distortion: C dicts of OpenCV distortion coefficients as the file stores them
            (``k1 k2 p1 p2 k3 ...``); ``{}`` for an undistorted camera. ``K`` never absorbs them.
        source: format name: "nerf", "colmap", "llff", "idr" or "cameras.json".
        near_far: [C, 2] near and far scene bounds in world units (LLFF), else None.
        path: the camera file or model folder this set was read from, if any.
    """

    cameras: Cameras
    image_paths: list[Path]
    distortion: list[dict[str, float]]
    source: str
    near_far: Tensor | None = None
    path: Path | None = None

    def __post_init__(self):
        n = len(self.cameras)
        if len(self.image_paths) != n or len(self.distortion) != n:
            raise ReconError(
                f"camera set needs one image path and one distortion dict per camera: {n} cameras, "
                f"{len(self.image_paths)} paths, {len(self.distortion)} distortion dicts"
            )
        if self.near_far is not None and tuple(self.near_far.shape) != (n, 2):
            raise ReconError(f"near_far must be [{n}, 2], got {tuple(self.near_far.shape)}")

    def __len__(self) -> int:
        return len(self.cameras)

    @property
    def names(self) -> list[str]:
        """C image file names (no folder)."""
        return [p.name for p in self.image_paths]

    def select(self, views: Sequence[View]) -> CameraSet:
        """The subset ``views`` (indices, file names or stems), in the order given.

        Raises ``ReconError`` naming the first entry that matches no frame (or several).
        """
        idx = resolve_views(views, self.image_paths, self._where())
        return CameraSet(
            cameras=self.cameras[idx],
            image_paths=[self.image_paths[i] for i in idx],
            distortion=[dict(self.distortion[i]) for i in idx],
            source=self.source,
            near_far=None if self.near_far is None else self.near_far[idx],
            path=self.path,
        )

    def _where(self) -> str:
        return str(self.path) if self.path is not None else f"{self.source} camera set"

    @property
    def unnamed(self) -> bool:
        """True when the file names no images (every name is a placeholder such as ``000`` or ``view_000``)."""
        return all(_PLACEHOLDER.fullmatch(image_key(n)) for n in self.names)

    def match_images(self, names: Sequence[str]) -> list[int]:
        """The camera index of each image name in ``names`` (files the user gave, no folders).

        An image matches the frame of the same file name, else the one of the same stem, whatever
        folder the file stores (NeRF's ``./train/r_26`` is ``r_26.png``). Raises ``ReconError``
        naming the images that match no frame, or several, or one frame twice. Extra frames are
        fine (the matched subset is used). The caller decides whether an ``unnamed`` set may be
        taken in file order instead.
        """
        by_name: dict[str, list[int]] = {}
        by_key: dict[str, list[int]] = {}
        for i, p in enumerate(self.image_paths):
            by_name.setdefault(p.name, []).append(i)
            by_key.setdefault(image_key(p.name), []).append(i)
        order: list[int] = []
        missing: list[str] = []
        for n in names:
            hits = by_name.get(n) or by_key.get(image_key(n)) or []
            if len(hits) > 1:
                frames = short_list(self.image_paths[i].name for i in hits)
                raise ReconError(f"{self._where()}: image {n!r} matches {len(hits)} frames ({frames}); "
                                 "rename the images or the frames so that each name is unique")
            if hits:
                order.append(hits[0])
            else:
                missing.append(n)
        if missing:
            raise ReconError(f"{self._where()}: no camera for {len(missing)} of {len(names)} image(s): "
                             f"{short_list(missing)} (its {len(self)} frames name e.g. {self.image_paths[0].name!r})")
        seen: dict[int, str] = {}
        for n, i in zip(names, order):
            if i in seen:
                raise ReconError(f"{self._where()}: images {seen[i]!r} and {n!r} both match frame {i} "
                                 f"({self.image_paths[i].name!r})")
            seen[i] = n
        return order


def image_key(name: str) -> str:
    """What image names are matched by: the base name without its image suffix (``train/r_26``,
    ``r_26.png`` and ``r_26`` are all ``r_26``); a name without an image suffix is kept whole."""
    base = re.split(r"[\\/]", name)[-1]
    stem, dot, suffix = base.rpartition(".")
    return stem if dot and stem and f".{suffix.lower()}" in KEY_SUFFIXES else base


def short_list(names, limit: int = 5) -> str:
    """``a.png, b.png, c.png, ... (12 in all)``: a short list for one-line messages."""
    names = list(names)
    text = ", ".join(names[:limit])
    return text if len(names) <= limit else f"{text}, ... ({len(names)} in all)"


def did_you_mean(wanted: str, names: Sequence[str]) -> str:
    """`` (did you mean 'r_26.png'?)`` for a view name that matches none of ``names``: a name of the same
    stem (the extension left out), else the closest spelling; ``""`` when nothing is close."""
    same = [n for n in names if image_key(n) == image_key(wanted)]
    close = same or difflib.get_close_matches(wanted, list(names), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def resolve_views(views: Sequence[View], image_paths: Sequence[Path], where: str) -> list[int]:
    """Indices ``[V]`` for ``views``: ints are indices; strings match a file name, then a stem,
    then (if they read as an integer) an index. ``where`` names the set in error messages."""
    if isinstance(views, (int, str)):
        views = [views]
    views = list(views)
    if not views:
        raise ReconError(f"{where}: no views selected")
    n = len(image_paths)
    by_name: dict[str, list[int]] = {}
    by_stem: dict[str, list[int]] = {}
    for i, p in enumerate(image_paths):
        by_name.setdefault(p.name, []).append(i)
        by_stem.setdefault(p.stem, []).append(i)
    out = []
    for v in views:
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            if not 0 <= int(v) < n:
                raise ReconError(f"{where}: view index {int(v)} is out of range: there are {n} views (0 to {n - 1})")
            out.append(int(v))
            continue
        if not isinstance(v, str):
            raise ReconError(f"{where}: view {v!r} is neither an index nor a file name")
        hits = by_name.get(v) or by_stem.get(v) or by_name.get(Path(v).name)
        if hits is None and v.strip().lstrip("-").isdigit():
            j = int(v)
            if not 0 <= j < n:
                raise ReconError(f"{where}: view index {j} is out of range: there are {n} views (0 to {n - 1})")
            hits = [j]
        if not hits:
            hint = did_you_mean(v, [p.name for p in image_paths]) or f" (there are {n} views, e.g. {image_paths[0].name!r})"
            raise ReconError(f"{where}: no view named {v!r}{hint}")
        if len(hits) > 1:
            raise ReconError(f"{where}: view name {v!r} is ambiguous: it matches views {hits}; select by index")
        out.append(hits[0])
    return out


def build_camera_set(
    path: Path,  # the camera file (named in every error)
    source: str,  # format name stored in the set
    c2w: np.ndarray,  # [N, 4, 4] camera-to-world, OpenCV axes, already converted
    K: np.ndarray,  # [N, 3, 3] intrinsics in pixels of sizes[i]
    sizes: Sequence[tuple[int, int]],  # N (width, height)
    image_paths: Sequence[Path],  # N
    distortion: Sequence[dict[str, float]] | None = None,  # N, default all {}
    near_far: np.ndarray | None = None,  # [N, 2]
    views: Sequence[View] | None = None,  # subset to keep (indices or names), default all
    dtype: torch.dtype = torch.float32,
) -> CameraSet:
    """Validate all N frames, keep ``views``, check they share one image size, return the set.

    Poses are validated in float64 before the cast to ``dtype`` so that errors name the
    frame index of the file.
    """
    n = len(c2w)
    if n == 0:
        raise FileFormatError(path, "holds no cameras")
    distortion = [dict(d) for d in distortion] if distortion is not None else [{} for _ in range(n)]
    for i, d in enumerate(distortion):
        for k, v in d.items():
            if not math.isfinite(v):
                raise FileFormatError(path, f"frame {i} distortion {k} is {v}")
    c2w_t = torch.as_tensor(np.asarray(c2w, dtype=np.float64))
    K_t = torch.as_tensor(np.asarray(K, dtype=np.float64))
    # Validation needs a Cameras object; the size does not matter for it, so use the first.
    Cameras(c2w_t, K_t, *sizes[0]).validate(source=str(path))

    idx = list(range(n)) if views is None else resolve_views(views, [Path(p) for p in image_paths], str(path))
    picked = Counter(sizes[i] for i in idx)
    if len(picked) > 1:
        parts = []
        for (w, h), count in picked.most_common():
            frames = [i for i in idx if sizes[i] == (w, h)]
            shown = ", ".join(map(str, frames[:4])) + (", ..." if len(frames) > 4 else "")
            parts.append(f"{w}x{h} for {count} frame(s) ({shown})")
        raise FileFormatError(
            path, f"images have different sizes: {'; '.join(parts)}; select views of one size (--views)"
        )
    width, height = sizes[idx[0]]
    cams = Cameras(c2w_t[idx].to(dtype), K_t[idx].to(dtype), width, height)
    nf = None if near_far is None else torch.as_tensor(np.asarray(near_far, dtype=np.float64)[idx]).to(dtype)
    return CameraSet(
        cameras=cams,
        image_paths=[Path(image_paths[i]) for i in idx],
        distortion=[distortion[i] for i in idx],
        source=source,
        near_far=nf,
        path=Path(path),
    )


def read_image_size(image_path: Path, camera_file: Path) -> tuple[int, int]:
    """``(width, height)`` of an image from its header only (pixels are not decoded)."""
    try:
        with Image.open(image_path) as im:
            return int(im.width), int(im.height)
    except FileNotFoundError:
        raise FileFormatError(camera_file, f"image {image_path} does not exist (needed for the image size)") from None
    except Exception as e:  # PIL raises several types for unreadable files
        raise FileFormatError(camera_file, f"cannot read the size of image {image_path}: {e}") from None


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def list_images(folder: Path) -> list[Path]:
    """Image files (png/jpg/jpeg, any case) directly in ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def as_size(value, what: str, path: Path) -> int:
    """A positive integer image dimension from a JSON/npy number (``1080.0`` is fine)."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise FileFormatError(path, f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(f) or f <= 0 or abs(f - round(f)) > 1e-6:
        raise FileFormatError(path, f"{what} must be a positive whole number of pixels, got {value!r}")
    return int(round(f))


def as_matrix(value, rows: int, cols: int, what: str, path: Path, allow_3x4: bool = False) -> np.ndarray:
    """A float64 ``[rows, cols]`` matrix from nested lists; a 3x4 pose gains the row [0,0,0,1]
    when ``allow_3x4``. Raises ``FileFormatError`` naming ``what`` on any other shape."""
    try:
        m = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise FileFormatError(path, f"{what} must be a {rows}x{cols} matrix of numbers") from None
    if allow_3x4 and m.shape == (3, 4):
        m = np.concatenate([m, [[0.0, 0.0, 0.0, 1.0]]], axis=0)
    if m.shape != (rows, cols):
        shape = "x".join(map(str, m.shape)) or "a scalar"
        raise FileFormatError(path, f"{what} must be a {rows}x{cols} matrix, got {shape}")
    return m


def load_json(path: Path) -> dict:
    """The top-level JSON object of ``path``; ``FileFormatError`` if missing, malformed or not an object."""
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(path, "no such file")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise FileFormatError(path, f"malformed JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise FileFormatError(path, f"cannot read: {e}") from None
    if not isinstance(data, dict):
        raise FileFormatError(path, f"expected a JSON object at the top level, got {type(data).__name__}")
    return data


def frames_list(data: dict, path: Path) -> list[dict]:
    """``data["frames"]`` checked to be a non-empty list of objects."""
    frames = data.get("frames")
    if frames is None:
        raise FileFormatError(path, "missing key 'frames'")
    if not isinstance(frames, list) or not all(isinstance(f, dict) for f in frames):
        raise FileFormatError(path, "'frames' must be a list of objects")
    if not frames:
        raise FileFormatError(path, "'frames' is empty")
    return frames
