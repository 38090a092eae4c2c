"""``render``: the one entry point that turns Gaussians into images.

CUDA tensors go through gsplat's fused rasterizer (imported on first use); CPU tensors go through
our compiled C++/OpenMP kernel (``renderer._cpu``, built on first use) or, without a compiler, its
pure-torch twin (``renderer._torch_impl``). All three implement the same maths:
EWA projection with gsplat's 0.3 px low-pass, opacity-aware bounding boxes, depth-sorted
front-to-back compositing with alpha clamped to 0.999, contributions below 1/255 skipped, and a
pixel finished once its transmittance would fall to 1e-4.
"""

from __future__ import annotations

import torch
from torch import Tensor

from renderer import _cpu
from renderer import _torch_impl as impl
from renderer._gsplat import render_gsplat  # imports gsplat itself only on first CUDA render
from renderer.cameras import Cameras
from renderer.errors import ReconError
from renderer.gaussians import Gaussians
from renderer.sh import sh_to_rgb
from renderer.types import RenderOutput


def has_gsplat() -> bool:
    """True when gsplat can be imported and a CUDA device is present (does not build kernels)."""
    if not torch.cuda.is_available():
        return False
    try:
        import gsplat  # noqa: F401  # lazy: CUDA rasterizer, builds kernels on first import
    except Exception:
        return False
    return True


def render(
    gaussians: Gaussians,  # N Gaussians, activated values, world frame
    cameras: Cameras,  # C cameras, OpenCV, all of size width x height
    *,
    background: Tensor | tuple | None = None,  # [3] or [C, 3] colour behind the Gaussians; default black
    sh_degree: int | None = None,  # SH bands to use; default all that ``gaussians`` carries
    features: Tensor | None = None,  # [N, F] extra channels to composite (e.g. normals, ids)
    near_plane: float = 0.01,  # Gaussians with camera z at or below this are culled
    far_plane: float = 1e10,
    eps2d: float = 0.3,  # low-pass added to every 2D covariance, pixels^2 (gsplat's default)
    backend: str = "auto",  # "auto" (CUDA: gsplat; CPU: "cpu" when it builds, else "torch"), "cpu", "torch", "gsplat"
    tile_size: int | None = None,  # CPU tile edge in pixels (speed only; results do not depend on it)
    max_chunk_elements: int = 1 << 24,  # "torch" backend memory bound: Gaussian-pixel pairs per chunk
) -> RenderOutput:
    """Render ``gaussians`` from every camera in ``cameras``; differentiable in every Gaussian field.

    Colour per Gaussian is ``clamp_min(SH(dir) + 0.5, 0)`` with ``dir`` from the camera centre to
    the Gaussian mean. Depth is the expected z-depth ``sum_i w_i z_i / sum_i w_i``.

    Backends: ``"cpu"`` is the compiled CPU kernel (float32/float64; built and cached on first use,
    ``has_cpu_kernel()`` says whether it is available), ``"torch"`` its pure-torch twin,
    ``"gsplat"`` the CUDA rasterizer. Gradients reach the pose through ``cameras.c2w`` on every
    CPU backend; they reach ``cameras.K`` only through the torch projection, which the "cpu"
    backend uses whenever ``K`` requires grad. ``tile_size`` defaults to 16 for "cpu", 4 for "torch".

    Example::

        >>> import torch
        >>> from renderer import Cameras, Gaussians, render
        >>> g = Gaussians.from_rgb(torch.zeros(1, 3), torch.tensor([[1.0, 0.0, 0.0]]),
        ...                        torch.full((1, 3), 0.1), torch.tensor([0.9]))
        >>> cams = Cameras.orbit(2, radius=2.0, width=64, height=48)
        >>> out = render(g, cams, background=(1.0, 1.0, 1.0))
        >>> out.rgb.shape, out.alpha.shape, out.depth.shape
        (torch.Size([2, 48, 64, 3]), torch.Size([2, 48, 64, 1]), torch.Size([2, 48, 64, 1]))
    """
    C, H, W = len(cameras), cameras.height, cameras.width
    device, dtype = gaussians.means.device, gaussians.means.dtype
    cameras = cameras.to(device=device, dtype=dtype)
    if sh_degree is None:
        sh_degree = gaussians.sh_degree
    if not 0 <= sh_degree <= gaussians.sh_degree:
        raise ReconError(f"sh_degree {sh_degree} is outside 0..{gaussians.sh_degree} for these Gaussians")
    if features is not None and (features.ndim != 2 or features.shape[0] != len(gaussians)):
        raise ReconError(f"features must be [N, F] with N={len(gaussians)}, got {tuple(features.shape)}")
    bg = _background(background, C, device, dtype)

    backend = _resolve_backend(backend, device, dtype)
    if backend == "gsplat":
        return render_gsplat(gaussians, cameras, bg, sh_degree, features, near_plane, far_plane, eps2d)

    if len(gaussians) == 0:
        zeros = torch.zeros(C, H, W, 1, dtype=dtype, device=device)
        rgb = zeros.expand(C, H, W, 3) + bg[:, None, None, :]
        feats = None if features is None else torch.zeros(C, H, W, features.shape[1], dtype=dtype, device=device)
        return RenderOutput(rgb, zeros, zeros.clone(), feats, torch.zeros(C, 0, 2, dtype=torch.int32, device=device))

    kernel = backend == "cpu"
    project = _cpu.project if kernel and not cameras.K.requires_grad else impl.project
    proj = project(gaussians, cameras, eps2d=eps2d, near_plane=near_plane, far_plane=far_plane)
    dirs = gaussians.means[None] - cameras.centers[:, None, :]  # [C, N, 3]
    colors = sh_to_rgb(gaussians.sh[None].expand(C, -1, -1, -1), dirs, sh_degree)  # [C, N, 3]
    channels = [colors, proj.depths[..., None]]
    if features is not None:
        channels.append(features[None].expand(C, -1, -1).to(dtype))
    values = torch.cat(channels, dim=-1)  # [C, N, 3 + 1 + F]
    if kernel:
        image, alpha = _cpu.rasterize(proj, values, W, H, tile_size=tile_size or _cpu.DEFAULT_TILE_SIZE)
    else:
        image, alpha = impl.rasterize(proj, values, W, H, tile_size=tile_size or 4, max_chunk_elements=max_chunk_elements)
    rgb = image[..., :3] + (1.0 - alpha) * bg[:, None, None, :]
    depth = image[..., 3:4] / alpha.clamp_min(1e-10)
    feats = image[..., 4:] if features is not None else None
    return RenderOutput(rgb, alpha, depth, feats, proj.radii)


def _resolve_backend(backend: str, device: torch.device, dtype: torch.dtype) -> str:
    """The backend to use: "gsplat", "cpu" (compiled kernel) or "torch"; ReconError when impossible."""
    if backend == "auto":
        if device.type == "cuda":
            return "gsplat"
        return "cpu" if device.type == "cpu" and dtype in _cpu.SUPPORTED_DTYPES and _cpu.has_cpu_kernel() else "torch"
    if backend == "cpu":
        if device.type != "cpu" or dtype not in _cpu.SUPPORTED_DTYPES:
            raise ReconError(f"backend 'cpu' renders float32/float64 CPU tensors, got {dtype} on {device}")
        if not _cpu.has_cpu_kernel():
            raise ReconError(f"backend 'cpu': the compiled CPU kernel is unavailable ({_cpu.unavailable_reason()})")
    elif backend not in ("torch", "gsplat"):
        raise ReconError(f"unknown render backend {backend!r} (use auto, cpu, torch or gsplat)")
    return backend


def _background(background, C: int, device, dtype) -> Tensor:
    if background is None:
        return torch.zeros(C, 3, device=device, dtype=dtype)
    bg = torch.as_tensor(background, device=device, dtype=dtype)
    if bg.shape == (3,):
        return bg.expand(C, 3)
    if bg.shape == (C, 3):
        return bg
    raise ReconError(f"background must be [3] or [{C}, 3], got {tuple(bg.shape)}")
