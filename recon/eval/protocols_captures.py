"""Sparse-view protocols on real captures, in the literature's style (RegNeRF, FreeNeRF, ...):
``dtu-3`` / ``dtu-6`` (DTU scans 24 and 37) and ``llff-3`` (LLFF horns, room, flower).

Views are literals in this file; ``tests/recon/eval/test_protocols_captures.py`` checks that they
follow the stated rules on the data. No image of these datasets is copied into the repo.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from recon.core.types import Views
from recon.eval.imaging import load_view
from recon.eval.protocol_base import EvalItem, EvalProtocol, MetricSettings, ProtocolOverrides
from recon.io.idr import read_idr
from recon.io.llff import read_llff

BLACK = (0.0, 0.0, 0.0)

# ---- DTU ----------------------------------------------------------------------------------------

DTU_SCANS = ("dtu_scan24", "dtu_scan37")
DTU_INPUTS_3 = (25, 22, 28)  # the literature's 3-view split (RegNeRF); 6 views add 40, 44, 48
DTU_INPUTS_6 = DTU_INPUTS_3 + (40, 44, 48)
DTU_TARGETS = (1, 9, 12, 15, 23, 29)  # held out (the subset of the literature's test views we have)
DTU_FULL_SIZE = (1600, 1200)
DTU_SIZE = (400, 300)  # 4x downscaled, as in the literature


class DtuSparse(EvalProtocol):
    """DTU MVS scans 24 and 37 from 3 or 6 views (400 x 300, masked PSNR on 6 held-out views).

    Cameras: ``cameras_sphere.npz`` (the normalised world of IDR/NeuS, object in the unit sphere).
    Images (1600 x 1200 PNG) are area-downsampled 4x; cameras by ``Cameras.resize`` (K exact). The
    method sees the images without masks (a reconstruction must cope with the table and backdrop,
    as in the literature). Targets carry the object masks (soft masks thresholded at 0.5 after the
    same downsampling); the headline metric is ``psnr_fg``, the PSNR over the mask pixels only
    (stricter than the literature's masked-image PSNR, which also counts the zeroed background).
    Rendered over black.
    """

    data_subdir = DTU_SCANS[0]  # check() looks for the first scan; _items needs both
    background = BLACK
    metrics = MetricSettings(psnr_foreground=True)

    def __init__(self, name: str, inputs: tuple[int, ...], data_dir=None, overrides: ProtocolOverrides | None = None):
        super().__init__(data_dir, overrides)
        self.name = name
        self.inputs = tuple(inputs)
        self.description = f"DTU scans 24 and 37, {len(inputs)} input views, 6 held out, 400x300, masked PSNR"

    @property
    def size(self) -> tuple[int, int]:
        return self.overrides.scaled(*DTU_SIZE)

    def _definition(self) -> dict:
        return {"data": ", ".join(f"{s}/cameras_sphere.npz" for s in DTU_SCANS), "inputs": list(self.inputs),
                "targets": list(DTU_TARGETS), "size": list(self.size), "masks_to_method": False,
                "preprocessing": "1600x1200 PNG area-downsampled 4x; target masks thresholded at 0.5",
                "headline": "psnr_fg (PSNR inside the object masks of the targets)"}

    def num_items(self) -> int:
        return len(DTU_SCANS)

    def _views(self, scan: str, ids: tuple[int, ...], masks: bool) -> Views:
        root = self.root.parent / scan
        cams = read_idr(root / "cameras_sphere.npz", width=DTU_FULL_SIZE[0], height=DTU_FULL_SIZE[1],
                        image_folder=False).cameras[list(ids)]
        width, height = self.size
        rgb = torch.stack([load_view(root / "images" / f"{i:06d}.png", width, height)[0] for i in ids])
        mask = None
        if masks:
            soft = torch.stack([load_view(root / "mask" / f"{i:03d}.png", width, height)[0][..., :1] for i in ids])
            mask = (soft >= 0.5).float()
        return Views(rgb, cams.resize(width, height), masks=mask, names=[f"{i:06d}.png" for i in ids])

    def _items(self, skip: frozenset[str] = frozenset()) -> Iterator[EvalItem]:
        for scan in DTU_SCANS:
            item_id = scan.removeprefix("dtu_")
            if item_id in skip:
                yield EvalItem(item_id, None, None, {})
                continue
            yield EvalItem(item_id, self._views(scan, self.inputs, False), self._views(scan, DTU_TARGETS, True), {})


# ---- LLFF ---------------------------------------------------------------------------------------

# Per scene: (folder, image folder, size, inputs, targets). Targets: every 8th image (0, 8, 16, ...);
# inputs: 3 spread evenly over the rest (indices round(linspace(0, n_rest - 1, 3)) of the rest).
LLFF_SCENES = (
    ("llff_horns", "images_8", (504, 378),
     ("DJI_20200223_163017_967.png", "DJI_20200223_163053_863.png", "DJI_20200223_163225_243.png"),
     ("DJI_20200223_163016_842.png", "DJI_20200223_163024_597.png", "DJI_20200223_163033_432.png",
      "DJI_20200223_163047_307.png", "DJI_20200223_163055_437.png", "DJI_20200223_163103_777.png",
      "DJI_20200223_163201_633.png", "DJI_20200223_163208_938.png")),
    ("llff_room", "images", (498, 373), ("img002.JPG", "img021.JPG", "img040.JPG"),
     ("img001.JPG", "img009.JPG", "img017.JPG", "img025.JPG", "img033.JPG", "img041.JPG")),
    ("llff_flower", "images", (499, 374), ("img002.JPG", "img018.JPG", "img034.JPG"),
     ("img001.JPG", "img009.JPG", "img017.JPG", "img025.JPG", "img033.JPG")),
)


class LlffSparse(EvalProtocol):
    """LLFF forward-facing scenes horns, room and flower from 3 views (about 500 x 375).

    Cameras: ``poses_bounds.npy`` (LLFF axes converted to OpenCV; world as stored). Images: horns'
    ``images_8`` (504 x 378) as they are; room and flower's undistorted JPEGs halved (area
    downsampling, K exact), the literature's images_8 scale. Every 8th image is held out; 3 inputs
    spread evenly over the rest. No masks: the whole frame is scene. Metrics: PSNR and SSIM over
    whole images, rendered over black.
    """

    name = "llff-3"
    description = "LLFF horns, room and flower, 3 input views, every 8th held out, about 500x375"
    data_subdir = LLFF_SCENES[0][0]
    background = BLACK
    metrics = MetricSettings()

    def _definition(self) -> dict:
        return {"data": ", ".join(f"{s[0]}/poses_bounds.npy ({s[1]})" for s in LLFF_SCENES),
                "inputs": {s[0]: list(s[3]) for s in LLFF_SCENES}, "targets": {s[0]: list(s[4]) for s in LLFF_SCENES},
                "size": {s[0]: list(self.overrides.scaled(*s[2])) for s in LLFF_SCENES}, "masks_to_method": False,
                "preprocessing": "horns images_8 as stored; room and flower halved (area)"}

    def num_items(self) -> int:
        return len(LLFF_SCENES)

    def _views(self, scene: str, folder: str, size: tuple[int, int], names: tuple[str, ...]) -> Views:
        cset = read_llff(self.root.parent / scene, images=folder, views=list(names))
        width, height = self.overrides.scaled(*size)
        rgb = torch.stack([load_view(p, width, height)[0] for p in cset.image_paths])
        return Views(rgb, cset.cameras.resize(width, height), names=[p.name for p in cset.image_paths])

    def _items(self, skip: frozenset[str] = frozenset()) -> Iterator[EvalItem]:
        for scene, folder, size, inputs, targets in LLFF_SCENES:
            item_id = scene.removeprefix("llff_")
            if item_id in skip:
                yield EvalItem(item_id, None, None, {})
                continue
            yield EvalItem(item_id, self._views(scene, folder, size, inputs), self._views(scene, folder, size, targets),
                           {})
