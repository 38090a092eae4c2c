"""Pipeline stage 2: foreground masks, the object path's recentring crop, the scene path's resize.

Every function that moves pixels returns them together with the ``K`` that belongs to them
(3x3, pixels, OpenCV; pixel centres at +0.5), computed with ``Cameras.crop`` / ``Cameras.resize``
semantics, so that a world point projects through the new ``K`` exactly where its pixel went:
``uv_out = (uv_in - (x0, y0)) * (out_w / window_w, out_h / window_h)``.

- ``foreground_mask(img)``: the alpha channel when the image has a usable one, otherwise GrabCut
  seeded with the image border as background. A failed GrabCut (empty or everything) falls back
  to the whole image *with a warning string*; nothing falls back silently.
- ``recentre_crop(img, mask, K, out_size=...)``: object photos. A square window centred on the
  mask's bounding box, sized so that the object spans ``foreground_ratio`` of it, composited over
  a white background (also where the window leaves the photo), resized to ``out_size``.
- ``resize_to_model(images, K, long_side, multiple)``: scenes and posed photos. No crop: the whole
  frame is resized so that the long side is ``long_side`` and both sides are multiples of
  ``multiple`` (the model's patch size).

Example::

    img = load_images(["mug.jpg"])[0]
    K = default_intrinsics(*img.size, img.exif_focal_35mm)
    m = foreground_mask(img)                       # m.warning goes into report.json
    view = recentre_crop(img, m.mask, K, out_size=256)
    views = PreparedViews.stack([view])            # images [1, 256, 256, 3], K [1, 3, 3]

OpenCV (``opencv-python-headless``) is used for GrabCut only and imported when GrabCut runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from recon.core.resize import model_input_size as model_size
from recon.core.types import Views
from recon.io.images import resize_image
from recon.pipeline.inputs import LoadedImage
from renderer.cameras import Cameras
from renderer.errors import ReconError

MaskMethod = Literal["alpha", "grabcut", "none"]
WHITE = (1.0, 1.0, 1.0)


# ---- typed stage outputs ----------------------------------------------------------------------


@dataclass
class MaskResult:
    """A foreground mask and how it was obtained.

    Attributes:
        mask: [H, W] float32 in [0, 1], 1 = object (soft at the edges when it is the alpha channel,
            binary from GrabCut, all ones for ``method == "none"``).
        method: the method actually used: ``"alpha"``, ``"grabcut"`` or ``"none"`` (whole image).
        warning: a one-line note for the report when something fell back, else None.
    """

    mask: Tensor
    method: str
    warning: str | None = None


@dataclass
class PreparedImage:
    """One view ready for the model: pixels, mask and the intrinsics of exactly these pixels.

    Attributes:
        rgb: [h, w, 3] float32 colour in [0, 1].
        mask: [h, w] float32 foreground in [0, 1], or None when unknown.
        K: [3, 3] intrinsics in pixels of this ``w`` x ``h`` image (OpenCV, centres at +0.5).
        name: the source file name.
        source_size: ``(W, H)`` of the image it came from.
        window: ``(x0, y0, width, height)``: the window of source pixels that became this image,
            before resizing; it may extend past the source (that part is background).
    """

    rgb: Tensor
    mask: Tensor | None
    K: Tensor
    name: str
    source_size: tuple[int, int]
    window: tuple[int, int, int, int]

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` in pixels."""
        return int(self.rgb.shape[1]), int(self.rgb.shape[0])

    def source_to_output(self, uv: Tensor) -> Tensor:
        """Map continuous source pixel coordinates ``uv [..., 2]`` to this image's pixels."""
        x0, y0, ww, wh = self.window
        w, h = self.size
        offset = torch.tensor([x0, y0], dtype=uv.dtype, device=uv.device)
        scale = torch.tensor([w / ww, h / wh], dtype=uv.dtype, device=uv.device)
        return (uv - offset) * scale


@dataclass
class PreparedViews:
    """V prepared views of one size, batched.

    Attributes:
        images: [V, H, W, 3] float32 colour in [0, 1].
        masks: [V, H, W] float32 foreground in [0, 1], or None when any view has none.
        K: [V, 3, 3] intrinsics in pixels of these ``W`` x ``H`` images.
        names: source file names.
        source_sizes: ``(W, H)`` of each source image.
        windows: each view's source window ``(x0, y0, width, height)`` (see ``PreparedImage``).
    """

    images: Tensor
    masks: Tensor | None
    K: Tensor
    names: list[str] = field(default_factory=list)
    source_sizes: list[tuple[int, int]] = field(default_factory=list)
    windows: list[tuple[int, int, int, int]] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def width(self) -> int:
        return int(self.images.shape[2])

    @property
    def height(self) -> int:
        return int(self.images.shape[1])

    @classmethod
    def stack(cls, views: Sequence[PreparedImage]) -> PreparedViews:
        """Batch ``PreparedImage``s of one size (``ValueError`` if the sizes differ)."""
        sizes = {v.size for v in views}
        if len(sizes) != 1:
            raise ValueError(f"cannot batch prepared images of different sizes {sorted(sizes)}")
        masks = None if any(v.mask is None for v in views) else torch.stack([v.mask for v in views])
        return cls(torch.stack([v.rgb for v in views]), masks, torch.stack([v.K for v in views]),
                   [v.name for v in views], [v.source_size for v in views], [v.window for v in views])

    def cameras(self, c2w: Tensor) -> Cameras:
        """``Cameras`` for these pixels given poses ``c2w [V, 4, 4]`` (OpenCV camera-to-world)."""
        return Cameras(c2w, self.K.to(c2w.dtype), self.width, self.height)

    def to_views(self, c2w: Tensor) -> Views:
        """``recon.core.types.Views`` with poses ``c2w [V, 4, 4]`` (masks become ``[V, H, W, 1]``)."""
        masks = None if self.masks is None else self.masks[..., None]
        return Views(self.images, self.cameras(c2w), masks=masks, names=list(self.names))


# ---- masks ------------------------------------------------------------------------------------


def foreground_mask(
    img: LoadedImage,
    method: MaskMethod = "alpha",
    *,
    work_size: int = 512,  # GrabCut runs on a copy whose long side is at most this (pixels)
    border_frac: float = 0.02,  # width of the background seed band, as a fraction of the long side
    iterations: int = 5,  # GrabCut iterations
) -> MaskResult:
    """Foreground mask of one photo, ``[H, W]`` in its pixels.

    Methods:
        ``"alpha"`` (default): the alpha channel if the image has one with both transparent and
            opaque pixels; otherwise GrabCut (a fully opaque or fully transparent alpha channel
            is noted in ``warning``).
        ``"grabcut"``: GrabCut even when there is alpha. The band of ``border_frac`` x long side
            along the image border is the background seed; everything inside may be foreground.
            Small specks (components under 5% of the largest) are dropped and small enclosed holes
            (under 1% of the object) filled. The result is deterministic (OpenCV's RNG is seeded).
        ``"none"``: the whole image is the object.

    When GrabCut fails (finds nothing, takes everything inside the border, or errors) the mask is
    the whole image, ``method`` is ``"none"`` and ``warning`` says why.
    """
    H, W = img.rgb.shape[:2]
    notes = []
    if method == "none":
        return MaskResult(torch.ones(H, W), "none")
    if method == "alpha":
        if img.alpha is not None:
            opaque = img.alpha > 0.5
            if bool(opaque.any()) and not bool(opaque.all()):
                return MaskResult(img.alpha.float().clamp(0, 1), "alpha")
            notes.append(f"alpha channel is fully {'opaque' if bool(opaque.all()) else 'transparent'}, used GrabCut")
    elif method != "grabcut":
        raise ValueError(f"unknown mask method {method!r} (alpha, grabcut, none)")
    mask, problem = grabcut_mask(img.rgb, work_size=work_size, border_frac=border_frac, iterations=iterations)
    if mask is None:
        notes.append(f"{problem}; using the whole image as the object")
        return MaskResult(torch.ones(H, W), "none", f"{img.name}: " + "; ".join(notes))
    return MaskResult(mask, "grabcut", f"{img.name}: " + "; ".join(notes) if notes else None)


def grabcut_mask(
    rgb: Tensor,  # [H, W, 3] float in [0, 1]
    *,
    work_size: int = 512,
    border_frac: float = 0.02,
    iterations: int = 5,
) -> tuple[Tensor | None, str | None]:
    """GrabCut seeded from the border: ``(mask [H, W] float32 in {0, 1}, None)`` or ``(None, problem)``."""
    import cv2  # lazy: only GrabCut needs OpenCV

    H, W = rgb.shape[:2]
    img8 = (rgb.detach().float().clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).cpu().numpy()
    s = min(1.0, work_size / max(H, W))
    if s < 1.0:  # area filter: no aliasing in the colour statistics
        img8 = cv2.resize(img8, (max(1, round(W * s)), max(1, round(H * s))), interpolation=cv2.INTER_AREA)
    h, w = img8.shape[:2]
    m = max(1, round(border_frac * max(h, w)))
    if w - 2 * m < 2 or h - 2 * m < 2:
        return None, f"image of {W}x{H} is too small for GrabCut"
    # Channel order does not matter to GrabCut's colour models, so RGB is passed as it is.
    gc = np.zeros((h, w), np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # GrabCut's k-means initialisation draws from OpenCV's RNG
    try:
        cv2.grabCut(np.ascontiguousarray(img8), gc, (m, m, w - 2 * m, h - 2 * m), bgd, fgd, iterations,
                    cv2.GC_INIT_WITH_RECT)
    except cv2.error as e:  # degenerate colour statistics (e.g. a constant image)
        return None, f"GrabCut failed ({str(e).strip().splitlines()[-1]})"
    fg = _clean_mask((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD))
    if fg.mean() < 1e-3:
        return None, "GrabCut found no foreground"
    if fg[m:h - m, m:w - m].mean() > 0.99:
        return None, "GrabCut found no background inside the image border"
    if (h, w) != (H, W):
        fg = cv2.resize(fg.astype(np.float32), (W, H), interpolation=cv2.INTER_LINEAR) > 0.5
    return torch.from_numpy(fg.astype(np.float32)), None


def _clean_mask(fg: np.ndarray) -> np.ndarray:
    """Drop foreground specks (< 5% of the largest component) and fill small enclosed holes."""
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg.astype(np.uint8), connectivity=8)
    if n <= 1:
        return fg
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.zeros(n, bool)
    keep[1:] = areas >= 0.05 * areas.max()
    fg = keep[labels]
    n, labels, stats, _ = cv2.connectedComponentsWithStats((~fg).astype(np.uint8), connectivity=4)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    small = stats[:, cv2.CC_STAT_AREA] < 0.01 * fg.sum()
    small[0] = False  # label 0 is the foreground itself here
    small[border] = False
    return fg | small[labels]


# ---- object path: recentring crop -------------------------------------------------------------


def composite_over(rgb: Tensor, mask: Tensor, background=WHITE) -> Tensor:
    """``rgb [H, W, 3] * mask [H, W] + background * (1 - mask)`` (straight colour over a plain colour)."""
    bg = torch.as_tensor(background, dtype=rgb.dtype, device=rgb.device)
    a = mask[..., None].to(rgb.dtype)
    return rgb * a + bg * (1 - a)


def recentre_crop(
    img: LoadedImage,
    mask: Tensor,  # [H, W] foreground in [0, 1], in img's pixels (e.g. foreground_mask(img).mask)
    K: Tensor,  # [3, 3] intrinsics in pixels of img
    foreground_ratio: float = 0.85,  # the object's larger box side as a fraction of the output side
    *,
    out_size: int,  # output side in pixels (square)
    background=WHITE,  # RGB in [0, 1] behind the object and where the window leaves the photo
    composite: bool = True,  # replace the masked-out pixels by the background
    threshold: float = 0.5,  # mask level that counts as object for the bounding box
) -> PreparedImage:
    """Square crop centred on the object, resized to ``out_size`` x ``out_size``; with its ``K``.

    The bounding box of ``mask > threshold`` (continuous extent ``[x_lo, x_hi) x [y_lo, y_hi)``)
    has centre ``c`` and larger side ``e``; the window is ``side = ceil(e / foreground_ratio)``
    source pixels square, starting at the integer pixel ``round(c - side / 2)`` (integer, so the
    crop is a pure shift of ``K``'s principal point). Pixels of the window outside the photo are
    ``background`` (mask 0). The window is then resampled to ``out_size`` (antialiased bilinear,
    which scales continuous coordinates by ``out_size / side``, as ``Cameras.resize`` does).
    ``K`` is ``Cameras.crop(x0, y0, side, side).resize(out_size, out_size)`` of the input ``K``.

    Memory: the window is built at source resolution (``side^2 x 3`` floats) before resizing.
    Raises ``ValueError`` for an empty mask (``foreground_mask`` never returns one).
    """
    if not 0.0 < foreground_ratio <= 1.0:
        raise ValueError(f"foreground_ratio must be in (0, 1], got {foreground_ratio}")
    H, W = img.rgb.shape[:2]
    if tuple(mask.shape) != (H, W):
        raise ValueError(f"mask {tuple(mask.shape)} does not match the image {(H, W)}")
    fg = mask > threshold
    cols, rows = torch.nonzero(fg.any(0)).flatten(), torch.nonzero(fg.any(1)).flatten()
    if len(cols) == 0:
        raise ValueError(f"{img.name}: empty mask, nothing to centre on")
    x_lo, x_hi, y_lo, y_hi = int(cols[0]), int(cols[-1]) + 1, int(rows[0]), int(rows[-1]) + 1
    side = max(1, math.ceil(max(x_hi - x_lo, y_hi - y_lo) / foreground_ratio - 1e-9))
    x0 = math.floor((x_lo + x_hi - side) / 2 + 0.5)
    y0 = math.floor((y_lo + y_hi - side) / 2 + 0.5)

    mask = mask.to(img.rgb.dtype)
    rgb = composite_over(img.rgb, mask, background) if composite else img.rgb
    xa, xb, ya, yb = max(x0, 0), min(x0 + side, W), max(y0, 0), min(y0 + side, H)
    if (xa, ya, xb, yb) == (x0, y0, x0 + side, y0 + side):  # inside the photo: a view, no copy
        win_rgb, win_mask = rgb[ya:yb, xa:xb], mask[ya:yb, xa:xb]
    else:
        win_rgb = torch.empty(side, side, 3, dtype=rgb.dtype)
        win_rgb[:] = torch.as_tensor(background, dtype=rgb.dtype)
        win_mask = torch.zeros(side, side, dtype=mask.dtype)
        if xa < xb and ya < yb:
            win_rgb[ya - y0:yb - y0, xa - x0:xb - x0] = rgb[ya:yb, xa:xb]
            win_mask[ya - y0:yb - y0, xa - x0:xb - x0] = mask[ya:yb, xa:xb]
    out_rgb = resize_image(win_rgb, out_size, out_size).contiguous()
    out_mask = resize_image(win_mask[..., None], out_size, out_size)[..., 0].contiguous()
    cams = Cameras(torch.eye(4, dtype=K.dtype), K.reshape(3, 3), W, H).crop(x0, y0, side, side)
    K_out = cams.resize(out_size, out_size).K[0]
    return PreparedImage(out_rgb, out_mask, K_out, img.name, (W, H), (x0, y0, side, side))


# ---- scene / posed path: resize only ----------------------------------------------------------


def resize_to_model(
    images: Sequence[LoadedImage],
    K: Tensor,  # [V, 3, 3] or [3, 3] (shared): intrinsics in pixels of each source image
    long_side: int,  # target long side in pixels (rounded to a multiple of `multiple`)
    multiple: int,  # both output sides are multiples of this (the model's patch size)
    *,
    masks: Sequence[Tensor] | None = None,  # [H, W] per image; default: the alpha channels if all have one
) -> PreparedViews:
    """Resize whole frames (no crop) to the model's size; ``K`` rescaled to match.

    Sizes come from ``model_size``; rounding to ``multiple`` may change the aspect ratio by up to
    half a multiple per side, which the per-axis scaling of ``K`` (``Cameras.resize``) records
    exactly (``fx`` and ``fy`` may then differ slightly). Images of different sizes are fine as long
    as they land on one output size; otherwise ``ReconError`` names two of them.
    """
    if len(images) == 0:
        raise ReconError("no input images given")
    K = K.reshape(-1, 3, 3)
    if K.shape[0] == 1:
        K = K.expand(len(images), 3, 3)
    if K.shape[0] != len(images):
        raise ValueError(f"{len(images)} images but {K.shape[0]} intrinsics")
    if masks is None and all(im.alpha is not None for im in images):
        masks = [im.alpha for im in images]
    if masks is not None and len(masks) != len(images):
        raise ValueError(f"{len(images)} images but {len(masks)} masks")
    out = []
    for i, im in enumerate(images):
        W, H = im.size
        w, h = model_size(W, H, long_side, multiple)
        if out and (w, h) != out[0].size:
            raise ReconError(f"{images[0].name} ({images[0].size[0]}x{images[0].size[1]}) and {im.name} ({W}x{H}) "
                             f"resize to different model sizes ({out[0].size[0]}x{out[0].size[1]} and {w}x{h}); "
                             "give images of one aspect ratio")
        mask = None if masks is None else resize_image(masks[i].to(im.rgb.dtype)[..., None], w, h)[..., 0].contiguous()
        K_out = Cameras(torch.eye(4, dtype=K.dtype), K[i], W, H).resize(w, h).K[0]
        out.append(PreparedImage(resize_image(im.rgb, w, h).contiguous(), mask, K_out, im.name, (W, H), (0, 0, W, H)))
    return PreparedViews.stack(out)
