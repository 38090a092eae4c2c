"""Reconstructor: a trained ReconModel behind the ``Method`` interface, loaded from a checkpoint folder.

Three entry points: ``reconstruct(views)`` (posed: Gaussians in the input world frame and units),
``reconstruct_unposed(images)`` (no cameras: cameras recovered from the predicted pointmap, world
= the first camera's frame, scale = normalised pointmap units, see ``UnposedPrediction``) and
``mesh(views)`` (posed: the triplane SDF's zero level set in the input world frame).

A checkpoint folder holds ``config.json`` (``{"model": ModelConfig dict, "weights": {"file": ...,
"sha256": ...}, ...}``), the weights as safetensors, and a MODEL_CARD.md. Loading never unpickles,
checks the file's sha256 against config.json, and compares parameter names and shapes strictly.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from recon.data.types import Views
from recon.errors import ReconError
from recon.eval.interface import Mesh, Reconstruction
from recon.models import ModelConfig, ReconModel
from recon.models.adapter import PixelGaussians, gaussians_from_raw
from recon.models.carve import outside_mask_votes
from recon.models.frame import CanonicalFrame
from recon.models.pointmap import PointmapCameras, cameras_from_pointmaps, select_points
from recon.models.sdf_mesh import extract_mesh
from renderer import Cameras

WEIGHTS_NAME = "model.safetensors"


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def key_report(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """Readable lines for every missing, unexpected or mis-shaped parameter (empty when they match)."""
    own = model.state_dict()
    lines = [f"missing: {k} {tuple(v.shape)}" for k, v in own.items() if k not in state]
    lines += [f"unexpected: {k} {tuple(v.shape)}" for k, v in state.items() if k not in own]
    lines += [f"shape: {k} checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
              for k, v in own.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
    return lines


def model_input_size(width: int, height: int, long_side: int, multiple: int) -> tuple[int, int]:
    """Working size ``(w, h)``: the long side scaled to ``long_side``, both sides rounded half up to
    multiples of ``multiple`` (at least one multiple). The pipeline's preprocessing uses the same."""
    if multiple < 1 or long_side < multiple:
        raise ValueError(f"need long_side >= multiple >= 1, got {long_side} and {multiple}")
    s = long_side / max(width, height)
    return tuple(max(multiple, math.floor(v * s / multiple + 0.5) * multiple) for v in (width, height))


def resize_images(images: Tensor, width: int, height: int) -> Tensor:
    """Area-style (antialiased bilinear) resize of ``images [V, H, W, 3]`` in [0, 1]."""
    if tuple(images.shape[1:3]) == (height, width):
        return images
    x = F.interpolate(images.permute(0, 3, 1, 2).float(), size=(height, width), mode="bilinear",
                      antialias=True, align_corners=False)
    return x.permute(0, 2, 3, 1).clamp(0, 1)


def resize_masks(masks: Tensor, width: int, height: int) -> Tensor:
    """``masks [V, H, W]`` or ``[V, H, W, 1]`` in [0, 1] -> ``[V, height, width]``, resized exactly
    as ``resize_images`` resizes the images, so mask and image pixels stay aligned."""
    return resize_images((masks if masks.ndim == 4 else masks[..., None]).float(), width, height)[..., 0]


def resize_views(images: Tensor, cameras: Cameras, width: int, height: int) -> tuple[Tensor, Cameras]:
    """``resize_images`` of ``images [V, H, W, 3]``; K scales exactly with the image."""
    if (cameras.width, cameras.height) == (width, height):
        return images, cameras
    return resize_images(images, width, height), cameras.resize(width, height)


def _check_images(images: Tensor) -> Tensor:
    if images.ndim != 4 or images.shape[-1] != 3 or images.shape[0] < 1:
        raise ReconError(f"unposed input must be images [V, H, W, 3] with V >= 1, got {tuple(images.shape)}")
    return images


@dataclass
class UnposedPrediction:
    """The unposed path's result at the model's working resolution ``w x h``.

    World frame: the first camera's (OpenCV axes, ``cameras.c2w[0] = I``). Units: the predicted
    pointmap divided by the mean distance of its confident points (``conf >= pose_min_conf``, all
    views) from the first camera's centre, i.e. that mean distance is 1 (the normalisation the
    pointmap loss trains with). Gaussians sit on the recovered cameras' pixel rays at the z-depth
    of each pixel's predicted point in its recovered camera.

    Attributes:
        gaussians: per-pixel Gaussians ``[1, V, h, w, ...]``; opacity 0 for pixels whose point lies
            behind its camera and for views after the first whose camera was not recovered.
        cameras: V recovered cameras of ``w x h``.
        pose: the pose solver's output and statistics.
        points: [V, h, w, 3] normalised pointmap, world frame. conf: [V, h, w] its confidence.
    """

    gaussians: PixelGaussians
    cameras: Cameras
    pose: PointmapCameras
    points: Tensor
    conf: Tensor


class Reconstructor:
    """Feed-forward reconstruction with a ``ReconModel``.

    ``reconstruct(views)`` -> Gaussians in the input world frame (posed); ``reconstruct_unposed(images)``
    -> Gaussians and recovered cameras in the first camera's frame; ``mesh(views)`` -> triplane mesh.
    """

    name = "recon"

    def __init__(self, model: ReconModel, device: str | torch.device = "cpu", dtype: torch.dtype | None = None,
                 min_opacity: float = 0.005, info: dict | None = None, pose_min_conf: float = 1.5,
                 scale_gain: float = 1.0, carve_votes: int = 1, carve_threshold: float = 0.25):
        if isinstance(carve_votes, bool) or not isinstance(carve_votes, int) or carve_votes < 0:
            raise ReconError(f"carve_votes must be a whole number >= 0, not {carve_votes!r}")
        if isinstance(scale_gain, bool) or not (isinstance(scale_gain, (int, float)) and math.isfinite(scale_gain)
                                                 and scale_gain > 0):
            raise ReconError(f"scale_gain must be a positive number, not {scale_gain!r}")
        self.model = model.eval().to(device)
        self.cfg: ModelConfig = model.cfg
        self.device = torch.device(device)
        self.dtype = dtype if dtype is not None else torch.bfloat16
        self.min_opacity = min_opacity
        self.pose_min_conf = pose_min_conf  # pointmap confidence that counts for pose recovery and scale
        # Multiplies every predicted Gaussian scale: a calibration for weights whose photometric loss
        # only saw renders coarser than the ones they are used for (bench/scale_gain.py measures it on
        # training seeds; a checkpoint's config.json stores it as inference.scale_gain).
        self.scale_gain = float(scale_gain)
        # Silhouette carving (``recon.models.carve``) of posed input that comes with masks: a pixel
        # Gaussian is dropped when its centre falls on the background of at least this many other
        # views; 0 turns it off. Not learned, so not a checkpoint setting.
        self.carve_votes = carve_votes
        self.carve_threshold = float(carve_threshold)  # mask value below which a view says background
        self.info = dict(info or {})

    @classmethod
    def from_pretrained(cls, directory: str | Path = "checkpoints/default", device: str | torch.device = "cpu",
                        **kwargs) -> Reconstructor:
        from safetensors.torch import load_file

        d = Path(directory)
        cfg_path = d / "config.json"
        if not cfg_path.is_file():
            raise ReconError(f"{d}: not a checkpoint folder (no config.json)")
        try:
            cfg = json.loads(cfg_path.read_text())
            model_cfg = ModelConfig.from_dict(cfg["model"])
            wfile, want = cfg["weights"]["file"], cfg["weights"]["sha256"]
        except (ValueError, KeyError, TypeError) as e:
            raise ReconError(f"{cfg_path}: malformed checkpoint config ({e})") from None
        wpath = d / wfile
        if not wpath.is_file():
            raise ReconError(f"{d}: weights file {wfile} is missing")
        got = sha256_file(wpath)
        if got != want:
            raise ReconError(f"{wpath}: sha256 {got[:12]}... does not match config.json ({want[:12]}...)")
        state = load_file(str(wpath))
        model = ReconModel(model_cfg)
        problems = key_report(model, state)
        if problems:
            shown = "; ".join(problems[:5]) + (f"; ... {len(problems) - 5} more" if len(problems) > 5 else "")
            raise ReconError(f"{wpath}: weights do not fit the config: {shown}")
        model.load_state_dict({k: v.float() for k, v in state.items()})
        inference = cfg.get("inference", {})
        if not isinstance(inference, dict):
            raise ReconError(f"{cfg_path}: malformed checkpoint config (inference must be an object)")
        kwargs.setdefault("scale_gain", inference.get("scale_gain", 1.0))
        info = {"checkpoint": str(d), "sha256": got, "scale_gain": kwargs["scale_gain"]}
        try:
            return cls(model, device=device, info=info, **kwargs)
        except ReconError as e:
            raise ReconError(f"{cfg_path}: {e}") from None

    def _autocast(self):
        enabled = self.dtype != torch.float32
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=enabled)

    def _working_size(self, width: int, height: int) -> tuple[int, int]:
        return model_input_size(width, height, self.cfg.input_long_side, self.cfg.input_multiple)

    def _run_posed(self, views: Views, heads: tuple[str, ...]):
        """Model outputs for posed ``views`` at the working size: ``(ModelOutput, CanonicalFrame, working Cameras)``."""
        _, H, W, _ = views.images.shape
        w, h = self._working_size(W, H)
        images, cams = resize_views(views.images, views.cameras, w, h)
        frame = CanonicalFrame.from_cameras(cams)
        canon = frame.cameras_to_canonical(cams)
        dev = self.device
        img = images.permute(0, 3, 1, 2)[None].to(dev)
        conv = torch.tensor([frame.converged], device=dev)
        with self._autocast():
            out = self.model(img, canon.c2w[None].to(dev), canon.K[None].to(dev), conv, heads=heads)
        return out, frame, cams

    @torch.no_grad()
    def predict(self, views: Views):
        """Run the model on posed ``views``; returns ``(PixelGaussians, CanonicalFrame, working Cameras)``.

        When ``views.masks`` is given (and ``carve_votes > 0``), Gaussians outside the silhouettes
        of other views get opacity 0 (``recon.models.carve``).
        """
        return self._predict(views)[:3]

    def _predict(self, views: Views):
        """``predict`` and the number of pixel Gaussians the carving turned transparent."""
        out, frame, cams = self._run_posed(views, ("gaussians",))
        pg = out.gaussians
        pg.scales = pg.scales * self.scale_gain
        carved = 0
        if self.carve_votes > 0 and views.masks is not None and len(views) > 1:
            _, V, h, w = pg.opacities.shape
            canon = frame.cameras_to_canonical(cams)
            dev = pg.means.device
            source = torch.arange(V, device=dev).repeat_interleave(h * w)
            votes = outside_mask_votes(pg.means[0].reshape(-1, 3), source, canon.c2w.to(dev), canon.K.to(dev),
                                       resize_masks(views.masks, w, h).to(dev), threshold=self.carve_threshold)
            drop = (votes >= self.carve_votes).reshape(1, V, h, w)
            carved = int((drop & (pg.opacities > self.min_opacity)).sum())
            pg.opacities = pg.opacities * (~drop).to(pg.opacities.dtype)
        return pg, frame, cams, carved

    @torch.no_grad()
    def reconstruct(self, inputs: Views) -> Reconstruction:
        t0 = time.perf_counter()
        if len(inputs) < 1:
            raise ReconError("no input views")
        pg, frame, _, carved = self._predict(inputs)
        g = frame.gaussians_to_world(pg.item(0, self.min_opacity).to(torch.device("cpu")))
        dt = time.perf_counter() - t0
        return Reconstruction(g, None, dt, {"gaussians": len(g), "carve_votes": self.carve_votes, "carved": carved,
                                            "frame": frame.to_dict(), **self.info})

    @torch.no_grad()
    def predict_unposed(self, images: Tensor, masks: Tensor | None = None) -> UnposedPrediction:
        """Run the model on ``images [V, H, W, 3]`` (in [0, 1]) without cameras, recover the cameras
        from the predicted pointmap (``recon.models.pointmap``) and place the Gaussians with them.

        ``masks [V, H, W]`` or ``[V, H, W, 1]`` (foreground in [0, 1], optional): only pixels on the
        object (mask >= 0.5 at the working size) count for the pose and the scale. The pointmap
        loss trains points and confidence on surface pixels only, so the background's confidence is
        untrained and can exceed the object's; without masks it competes for the pose.
        Everything is at the working resolution and in the frame and units ``UnposedPrediction`` states.
        """
        _check_images(images)
        if masks is not None and (masks.shape[0] != images.shape[0] or tuple(masks.shape[1:3]) != tuple(images.shape[1:3])):
            raise ReconError(f"masks {tuple(masks.shape)} do not match images {tuple(images.shape)}")
        if self.model.pointmap_head is None or self.model.gaussian_head is None:
            raise ReconError("this model has no pointmap or Gaussian head, so it cannot reconstruct unposed input")
        V, H, W, _ = images.shape
        w, h = self._working_size(W, H)
        small = resize_images(images, w, h)
        img = small.permute(0, 3, 1, 2)[None].to(self.device)  # [1, V, 3, h, w]
        with self._autocast():
            out = self.model(img, None, None, None, heads=("gaussians", "pointmap"))
        pts, conf = out.pointmap[0].float().cpu(), out.conf[0].float().cpu()  # [V, h, w, 3], [V, h, w]
        valid = torch.isfinite(pts).all(-1)
        if masks is not None:
            valid &= resize_masks(masks, w, h).cpu() >= 0.5
        keep = select_points(conf, valid, self.pose_min_conf, min_points=64)
        scale = pts[keep].norm(dim=-1).mean() if keep.any() else torch.tensor(1.0)
        pts = pts / scale.clamp_min(1e-6)
        pose = cameras_from_pointmaps(pts, conf, w, h, min_conf=self.pose_min_conf, valid=valid)
        c2w, K = pose.c2w.float(), pose.K.float()
        w2c = torch.linalg.inv(c2w)
        z = (pts @ w2c[:, None, :3, :3].transpose(-1, -2) + w2c[:, None, None, :3, 3])[..., 2]  # [V, h, w]
        front = z > 0
        z_min = 1e-3 * (z[front].median() if front.any() else torch.tensor(1.0))
        depth = z.clamp_min(float(z_min))
        dev = self.device
        inv_unused = torch.ones(V, 1, h, w, device=dev)  # the coarse depth is replaced by ``depth_override``
        pg = gaussians_from_raw(self.cfg.adapter, out.gaussian_raw.float(), inv_unused, img.float(),
                                c2w[None].to(dev), K[None].to(dev), depth_override=depth[None].to(dev))
        placed = pose.solved.clone()
        placed[0] = True  # the first camera is the world origin whether or not its focal length was found
        visible = front & placed[:, None, None]
        pg.opacities = pg.opacities * visible[None].to(dev)
        pg.scales = pg.scales * self.scale_gain
        return UnposedPrediction(pg, Cameras(c2w, K, w, h), pose, pts, conf)

    def reconstruct_unposed(self, images: Tensor, masks: Tensor | None = None) -> tuple[Reconstruction, Cameras]:
        """Reconstruct from ``images [V, H, W, 3]`` (in [0, 1]) without cameras; ``masks [V, H, W(, 1)]``
        (foreground in [0, 1], optional) restrict the pose recovery to the object (``predict_unposed``).

        Returns the Gaussians and the recovered cameras (OpenCV ``c2w``, ``K`` in pixels of the
        input's ``W x H``). World frame: the first camera's (``c2w[0] = I``); units: the
        normalised pointmap's (mean distance of the confident predicted points from the first
        camera = 1), see ``UnposedPrediction``. ``info`` says so and carries the pose statistics.
        """
        t0 = time.perf_counter()
        _, H, W, _ = _check_images(images).shape
        pred = self.predict_unposed(images, masks)
        g = pred.gaussians.item(0, self.min_opacity).to(torch.device("cpu"))
        cams = pred.cameras.resize(W, H)
        dt = time.perf_counter() - t0
        p = pred.pose
        reproj = [None if math.isnan(x) else x for x in p.reproj_px.tolist()]  # JSON has no NaN
        info = {"mode": "unposed", "world": "first camera", "scale": "pointmap mean distance = 1",
                "pose_masks": masks is not None,
                "gaussians": len(g), "pose_solved": p.solved.tolist(), "pose_inlier_ratio": p.inlier_ratio.tolist(),
                "pose_reproj_px": reproj, **self.info}
        return Reconstruction(g, None, dt, info), cams

    @torch.no_grad()
    def mesh(self, views: Views, resolution: int = 128, chunk: int = 1 << 16) -> Mesh:
        """Mesh of the triplane SDF's zero level set for posed ``views``: marching cubes over the
        head's cube (``extent``, canonical frame) at ``resolution`` nodes per axis, mapped to the
        input world frame and units; vertex colours from the colour field."""
        if self.model.triplane_head is None:
            raise ReconError("this model has no triplane head, so it cannot make meshes")
        if len(views) < 1:
            raise ReconError("no input views")
        out, frame, _ = self._run_posed(views, ("triplane",))
        planes = out.planes.float()

        def field(p: Tensor) -> tuple[Tensor, Tensor]:
            sdf, rgb = self.model.sdf(planes, p[None].to(planes.device))
            return sdf[0], rgb[0]

        verts, faces, colors = extract_mesh(field, resolution, self.cfg.triplane_head.extent, chunk, self.device)
        return Mesh(frame.points_to_world(verts), faces, colors)
