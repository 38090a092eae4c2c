"""Protocols on the real data in ../shared/eval_data: ``lego-sparse-4/8`` and ``fox-sparse``.

Every view is named by its file, not by an index, and every list is a literal in this file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch

from recon.core.errors import ReconError
from recon.core.types import Views
from recon.eval.imaging import load_view, undistort_image
from recon.eval.protocol_base import (
    EvalItem,
    EvalProtocol,
    MetricSettings,
    ProtocolOverrides,
)
from recon.io import CameraSet, read_cameras

WHITE = (1.0, 1.0, 1.0)
BLACK = (0.0, 0.0, 0.0)

# ---- lego ---------------------------------------------------------------------------------------

LEGO_INPUTS_4 = ("r_26", "r_86", "r_2", "r_55")
LEGO_INPUTS_8 = LEGO_INPUTS_4 + ("r_75", "r_93", "r_16", "r_73")
# All 8 frames of transforms_test_subset.json, in file order (checked against the file on load).
LEGO_TARGETS = ("r_0", "r_25", "r_50", "r_75", "r_100", "r_125", "r_150", "r_175")
LEGO_SIZE = (400, 400)  # (width, height); the files are 800 x 800


class LegoSparse(EvalProtocol):
    """Blender lego from sparse views (nerf_synthetic_lego, 800 -> 400 px, white background).

    Inputs: train views ``LEGO_INPUTS_4`` or ``LEGO_INPUTS_8`` of transforms_train.json, chosen by
    file name. Targets: the 8 views of transforms_test_subset.json (``LEGO_TARGETS``). RGBA PNGs
    are composited over white at 800 x 800, then area-downsampled 2x to 400 x 400 (cameras via
    ``Cameras.resize``, K exact). The method gets masks (the downsampled alpha). The reconstruction
    is rendered over white. Metrics: PSNR (whole image and over the target mask), SSIM. The
    depth PNGs of the dataset are 8-bit and not metric, so no depth error; no GT mesh.
    """

    data_subdir = "nerf_synthetic_lego"
    background = WHITE
    metrics = MetricSettings(psnr_foreground=True)
    train_file = "transforms_train.json"
    test_file = "transforms_test_subset.json"

    def __init__(self, name: str, input_names: tuple[str, ...], data_dir: Path | None = None,
                 overrides: ProtocolOverrides | None = None):
        super().__init__(data_dir, overrides)
        self.name = name
        self.input_names = tuple(input_names)
        self.description = f"lego, {len(input_names)} input views, 8 test views, 400x400, white background"

    @property
    def size(self) -> tuple[int, int]:
        return self.overrides.scaled(*LEGO_SIZE)

    def _definition(self) -> dict:
        return {
            "data": f"{self.data_subdir}/ ({self.train_file} inputs, {self.test_file} targets)",
            "inputs": list(self.input_names),
            "targets": list(LEGO_TARGETS),
            "size": list(self.size),
            "masks_to_method": True,
            "preprocessing": "RGBA composited over white at 800x800, area-downsampled to 400x400; alpha -> masks",
        }

    def num_items(self) -> int:
        return 1

    def _load(self, file: str, names: tuple[str, ...], split: str) -> Views:
        cams = read_cameras(self.root / file, views=list(names))
        width, height = self.size
        rgbs, alphas = zip(*(load_view(p, width, height, background=WHITE) for p in cams.image_paths))
        if any(a is None for a in alphas):
            raise ValueError(f"lego: {split} images without alpha in {self.root}")
        return Views(torch.stack(rgbs), cams.cameras.resize(width, height), masks=torch.stack(alphas),
                     names=[f"{split}/{p.name}" for p in cams.image_paths])

    def _items(self, skip: frozenset[str] = frozenset()) -> Iterator[EvalItem]:  # one item: always built
        stored = tuple(Path(n).stem for n in read_cameras(self.root / self.test_file).names)
        if stored != LEGO_TARGETS:
            raise ReconError(f"{self.root / self.test_file}: expected test views {list(LEGO_TARGETS)}, found {list(stored)}")
        inputs = self._load(self.train_file, self.input_names, "train")
        targets = self._load(self.test_file, LEGO_TARGETS, "test")
        yield EvalItem("lego", inputs, targets, {})


# ---- fox ----------------------------------------------------------------------------------------

# Chosen once by recon.eval.view_selection.split_inputs_targets(cameras, 8, 10, allowed) on
# transforms.json, allowed = frames with instant-ngp "sharpness" >= FOX_SHARPNESS_MIN: inputs by
# farthest-point sampling on (centre / RMS spread, optical axis) from the most central camera,
# targets likewise from the inputs (views in the gaps between inputs). Frozen here as literals.
FOX_SHARPNESS_MIN = 15.0
FOX_INPUTS = ("0021.jpg", "0071.jpg", "0054.jpg", "0110.jpg", "0090.jpg", "0045.jpg", "0009.jpg", "0030.jpg")
FOX_TARGETS = ("0099.jpg", "0039.jpg", "0083.jpg", "0014.jpg", "0103.jpg", "0004.jpg", "0049.jpg", "0025.jpg",
               "0115.jpg", "0094.jpg")
FOX_SIZE = (540, 960)  # (width, height); the photos are 1080 x 1920 (portrait)


class FoxSparse(EvalProtocol):
    """instant-ngp fox from 8 photos (fox_instantngp, half resolution 540 x 960, black background).

    Inputs ``FOX_INPUTS`` and held-out targets ``FOX_TARGETS`` are disjoint literal lists, chosen
    once by farthest-point sampling over camera centres and optical axes (inputs spread from the
    most central camera, then targets in the gaps between them; blurry frames with instant-ngp
    sharpness < 15 excluded). The photos carry OpenCV distortion (k1, k2, p1, p2 in
    transforms.json): every image, input and target alike, is undistorted at full resolution onto
    the pinhole camera with the file's own K (``recon.eval.imaging.undistort_image``; the 1.6% of
    pixels, a thin border, whose source lies outside the photo repeat the edge pixel), then
    area-downsampled 2x; the cameras are ``Cameras.resize``-d, so methods see ideal pinhole
    images with exact K. No masks: the scene is full-frame, so a reconstruction must model the
    background itself, and it is rendered over black (a missing background shows as an error,
    not as a free colour).
    Metrics: PSNR and SSIM over whole images; no depth or mesh ground truth.
    """

    name = "fox-sparse"
    description = "instant-ngp fox, 8 input photos, 10 held-out, 540x960 undistorted, black background"
    data_subdir = "fox_instantngp"
    background = BLACK
    metrics = MetricSettings()
    camera_file = "transforms.json"

    @property
    def size(self) -> tuple[int, int]:
        return self.overrides.scaled(*FOX_SIZE)

    def _definition(self) -> dict:
        return {
            "data": f"{self.data_subdir}/{self.camera_file}",
            "inputs": list(FOX_INPUTS),
            "targets": list(FOX_TARGETS),
            "size": list(self.size),
            "masks_to_method": False,
            "preprocessing": "OpenCV undistortion to the file's pinhole K at 1080x1920 (border: edge pixels "
            "repeated), then area-downsampled to 540x960",
            "view_selection": f"farthest-point sampling on camera centres and axes, frames with sharpness >= "
            f"{FOX_SHARPNESS_MIN} (recon.eval.view_selection), frozen as literals",
        }

    def num_items(self) -> int:
        return 1

    def camera_set(self, names: tuple[str, ...]) -> CameraSet:
        return read_cameras(self.root / self.camera_file, views=list(names))

    def load_views(self, names: tuple[str, ...]) -> Views:
        """The named photos, undistorted and downsampled, with their pinhole cameras."""
        self.check()
        cams = self.camera_set(names)
        width, height = self.size
        rgbs = [
            load_view(p, width, height, K=cams.cameras.K[i], distortion=cams.distortion[i])[0]
            for i, p in enumerate(cams.image_paths)
        ]
        return Views(torch.stack(rgbs), cams.cameras.resize(width, height), names=[p.name for p in cams.image_paths])

    def _items(self, skip: frozenset[str] = frozenset()) -> Iterator[EvalItem]:  # one item: always built
        yield EvalItem("fox", self.load_views(FOX_INPUTS), self.load_views(FOX_TARGETS), {})


def undistorted_fraction(protocol: FoxSparse, name: str) -> float:
    """Fraction of an undistorted fox view whose source pixel lies inside the photo (for docs/tests)."""
    cams = protocol.camera_set((name,))
    probe = torch.zeros(cams.cameras.height, cams.cameras.width, 1)
    return undistort_image(probe, cams.cameras.K[0], cams.distortion[0])[1]
