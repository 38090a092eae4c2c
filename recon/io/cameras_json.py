"""Our ``cameras.json``: read and write.

Format (one frame per image, in input order)::

    {"convention": "opencv",
     "frames": [{"file": "r_26.png", "c2w": [[4x4]], "K": [[3x3]], "width": W, "height": H}, ...],
     ...optional top-level notes, e.g. "pose_method", "world"}

- ``c2w``: camera-to-world, OpenCV camera axes (x right, y down, z forward), world units.
- ``K``: pixels of that frame's ``width x height`` (the original image's).
- ``file``: the image, relative to the JSON's folder (absolute paths are kept as they are); a name
  that is not valid UTF-8 on disk is stored with U+FFFD for each undecodable byte (``recon.core.text.utf8_text``).
- Optional per frame: ``distortion`` ({"k1": ..., ...}, OpenCV names), ``near_far`` ([near, far]).

Numbers are written with Python's shortest round-trip repr of the float64 value, so write -> read
is exact in float64, and float32 tensors come back exact after the cast. Writes are atomic: a
temporary file in the same folder replaced onto the target, so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from recon.core.text import utf8_text
from recon.io.camera_set import (
    CameraSet,
    View,
    as_matrix,
    as_size,
    build_camera_set,
    frames_list,
    load_json,
)
from renderer.cameras import Cameras
from renderer.errors import FileFormatError

CONVENTION = "opencv"


def read_cameras_json(
    path: str | Path,  # cameras.json, or the folder holding it
    *,
    views: Sequence[View] | None = None,  # keep only these frames (indices or file names)
    dtype: torch.dtype = torch.float32,
) -> CameraSet:
    """Read our ``cameras.json``. Returns a ``CameraSet`` with ``source="cameras.json"``:
    c2w [N,4,4], K [N,3,3], distortion and (if every frame has it) near_far [N,2]."""
    path = Path(path)
    if path.is_dir():
        path = path / "cameras.json"
    data = load_json(path)
    if "convention" not in data:
        raise FileFormatError(path, "missing key 'convention' (expected \"opencv\")")
    if data["convention"] != CONVENTION:
        raise FileFormatError(
            path,
            f"convention is {data['convention']!r} but cameras.json must be \"opencv\" (x right, y down, z forward); "
            "convert OpenGL poses with c2w @ diag(1, -1, -1, 1)",
        )
    frames = frames_list(data, path)
    c2w, K, sizes, image_paths, distortion, near_far = [], [], [], [], [], []
    for i, frame in enumerate(frames):
        for key in ("file", "c2w", "K", "width", "height"):
            if key not in frame:
                raise FileFormatError(path, f"frame {i} is missing key {key!r}")
        if not isinstance(frame["file"], str) or not frame["file"]:
            raise FileFormatError(path, f"frame {i} 'file' must be a non-empty string")
        c2w.append(as_matrix(frame["c2w"], 4, 4, f"frame {i} c2w", path))
        K.append(as_matrix(frame["K"], 3, 3, f"frame {i} K", path))
        sizes.append((as_size(frame["width"], f"frame {i} width", path), as_size(frame["height"], f"frame {i} height", path)))
        image_paths.append(path.parent / frame["file"])
        dist = frame.get("distortion", {})
        if not isinstance(dist, dict) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in dist.values()):
            raise FileFormatError(path, f"frame {i} 'distortion' must map names to numbers")
        distortion.append({str(k): float(v) for k, v in dist.items()})
        if "near_far" in frame:
            nf = np.asarray(frame["near_far"], dtype=np.float64) if _is_pair(frame["near_far"]) else None
            if nf is None:
                raise FileFormatError(path, f"frame {i} 'near_far' must be [near, far]")
            near_far.append(nf)
    nf_arr = np.stack(near_far) if len(near_far) == len(frames) else None
    return build_camera_set(path, "cameras.json", np.stack(c2w), np.stack(K), sizes, image_paths, distortion, nf_arr, views, dtype)


def _is_pair(value) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)


def write_cameras_json(
    path: str | Path,  # output file, e.g. out/cameras.json
    cameras: CameraSet | Cameras,  # C cameras (OpenCV, validated before writing)
    files: Sequence[str] | None = None,  # C image names to store; default: the set's image paths
    extra: dict | None = None,  # optional top-level keys (e.g. {"pose_method": "given"})
) -> Path:
    """Write ``cameras`` atomically as our ``cameras.json``; returns the path written.

    ``files`` default: for a ``CameraSet``, each image path relative to the output folder (so
    that reading back finds the same images); for bare ``Cameras``, placeholders ``view_000``...
    """
    path = Path(path)
    cam_set = cameras if isinstance(cameras, CameraSet) else None
    cams = cam_set.cameras if cam_set is not None else cameras
    cams.validate(source=str(path))
    n = len(cams)
    if files is None:
        if cam_set is not None:
            files = [_relative(p, path.parent) for p in cam_set.image_paths]
        else:
            files = [f"view_{i:03d}" for i in range(n)]
    files = [utf8_text(str(f)) for f in files]
    if len(files) != n:
        raise ValueError(f"write_cameras_json: {n} cameras but {len(files)} file names")
    extra = dict(extra or {})
    reserved = {"convention", "frames"} & set(extra)
    if reserved:
        raise ValueError(f"write_cameras_json: extra may not set {sorted(reserved)}")

    c2w = cams.c2w.detach().cpu().double().tolist()
    K = cams.K.detach().cpu().double().tolist()
    frames = []
    for i in range(n):
        frame = {"file": files[i], "c2w": c2w[i], "K": K[i], "width": cams.width, "height": cams.height}
        if cam_set is not None and cam_set.distortion[i]:
            frame["distortion"] = {k: float(v) for k, v in cam_set.distortion[i].items()}
        if cam_set is not None and cam_set.near_far is not None:
            frame["near_far"] = cam_set.near_far[i].detach().cpu().double().tolist()
        frames.append(frame)
    doc = {"convention": CONVENTION, "frames": frames, **extra}
    # allow_nan=False: NaN/inf are not JSON; validation above already rejects them in poses.
    text = json.dumps(doc, indent=1, allow_nan=False)

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.chmod(f.fileno(), 0o644)  # mkstemp makes 0600 files; cameras.json is meant to be shared
            f.write(text + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _relative(image_path: Path, folder: Path) -> str:
    """``image_path`` relative to ``folder`` when both are on one tree, else absolute."""
    try:
        return os.path.relpath(os.path.abspath(image_path), os.path.abspath(folder))
    except ValueError:  # different drives (Windows)
        return str(Path(image_path).absolute())

