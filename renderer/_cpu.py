"""The compiled CPU splatting kernel: C++/OpenMP projection and rasterization with hand-written
backward passes. Its pure-torch twin is ``renderer._torch_impl``: same contracts, same maths
(tests/renderer/test_cpu_kernel.py compares the two, images and gradients).

``project``   EWA projection, as ``_torch_impl.project``; gradients to means, quaternions, scales
              and the world-to-camera matrices (so to a pose that requires grad), not to ``K``.
``rasterize`` tile rasterizer, as ``_torch_impl.rasterize``; gradients to 2D means, conics,
              opacities and values. Visible Gaussians are depth-sorted per camera (stable radix
              sort) and binned into tiles; inside a tile every Gaussian visits only the pixels of
              its box, front to back with early termination; the backward pass walks each pixel
              back to front from its saved final transmittance (the 3DGS algorithm).

Build: the sources in ``renderer/csrc`` are compiled by ``torch.utils.cpp_extension`` on first
use (about 15 s on 2 cores) into torch's extension cache (``~/.cache/torch_extensions``, or
``$TORCH_EXTENSIONS_DIR``), one build per instruction-set level so that a cache shared between
different CPUs never runs code a CPU lacks. ``scripts/setup.sh`` prebuilds it (``main``, which
prints the build log on failure). Importing this module builds nothing. Without a C++ compiler, or
when the build fails, ``load`` logs one warning line and returns None, and ``render`` uses the twin.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import threading
import time
from pathlib import Path

import torch
import torch.utils.cpp_extension as cpp_extension
from torch import Tensor
from torch.autograd.function import once_differentiable

from renderer._torch_impl import Projection
from renderer.cameras import Cameras
from renderer.gaussians import Gaussians

DEFAULT_TILE_SIZE = 16  # 8 is 10-15% slower; 32 is no faster and leaves fewer tiles to share (bench/README.md)
SUPPORTED_DTYPES = (torch.float32, torch.float64)
_CSRC = Path(__file__).resolve().parent / "csrc"
_SOURCES = ("ops.cpp", "project.cpp", "bin.cpp", "rasterize.cpp")
_log = logging.getLogger(__name__)
_lock = threading.Lock()
_state: dict[str, object] = {}  # "ops": the loaded operator namespace or None; "error": why not


def _isa_flags() -> tuple[str, list[str]]:
    """(build name suffix, compiler flags) for this CPU, from the instruction sets torch detects.

    The kernels use 8-lane vectors: AVX2 with FMA runs them 3x faster than baseline x86-64, and
    AVX-512 (x86-64-v4) or -march=native gain nothing more (bench/README.md). The suffix keeps a
    build for one level from ever being loaded on a CPU without it (a cache shared between machines).
    """
    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
        return "avx2", ["-mavx2", "-mfma"]
    return "generic", []


def _build_name(suffix: str) -> str:
    """The cache entry: one per instruction-set level and torch version (the binary uses torch's C++ ABI)."""
    torch_version = "".join(ch if ch.isalnum() else "_" for ch in torch.__version__)
    return f"recon_splat_cpu_{suffix}_torch{torch_version}"


def build(verbose: bool = False, isa: tuple[str, list[str]] | None = None):
    """Compile (or load from the cache) the extension and return its ``torch.ops`` namespace; raises on failure.

    ``isa`` overrides ``(name suffix, compiler flags)`` (bench/render.py --isa compares builds).
    """
    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        raise RuntimeError(f"no C++ compiler ({compiler!r} is not on PATH)")
    suffix, isa_flags = isa or _isa_flags()
    cpp_extension.load(
        name=_build_name(suffix),
        sources=[str(_CSRC / s) for s in _SOURCES],
        extra_cflags=["-O3", "-fopenmp", "-fno-math-errno", *isa_flags],
        extra_ldflags=["-fopenmp"],
        is_python_module=False,
        verbose=verbose,
    )
    return torch.ops.recon_splat


def load():
    """The kernel's operators, building them on first use; None (with one logged warning line) when unavailable."""
    with _lock:
        if "ops" not in _state:
            try:
                _state["ops"] = build()
            except Exception as exc:  # no compiler, no ninja, a failed compile: fall back, say why once
                reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
                _state["ops"], _state["error"] = None, reason
                _log.warning(
                    "renderer: compiled CPU splatting kernel unavailable (%s); using the pure-torch rasterizer "
                    "(renderer._cpu.main() prints the build log)",
                    reason,
                )
        return _state["ops"]


def has_cpu_kernel() -> bool:
    """True when the compiled CPU kernel can be used (compiles it on the first call if not cached)."""
    return load() is not None


def unavailable_reason() -> str | None:
    """Why the kernel could not be loaded (None when it loaded or was not tried yet)."""
    return _state.get("error")  # type: ignore[return-value]


def _ops():
    ops = load()
    if ops is None:
        raise RuntimeError(f"the compiled CPU splatting kernel is unavailable: {unavailable_reason()}")
    return ops


def _grad_or_zeros(grad: Tensor | None, like: Tensor) -> Tensor:
    return torch.zeros_like(like) if grad is None else grad.contiguous()


class _ProjectFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means, quats, scales, w2c, opacities, K, width, height, eps2d, near_plane, far_plane):
        means2d, conics, depths, radii = _ops().project_fwd(
            means, quats, scales, opacities, w2c, K, width, height, eps2d, near_plane, far_plane
        )
        ctx.save_for_backward(means, quats, scales, w2c, K, radii)
        ctx.config = (width, height, eps2d)
        ctx.mark_non_differentiable(radii)
        return means2d, conics, depths, radii

    @staticmethod
    @once_differentiable  # hand-written first derivatives only
    def backward(ctx, g_means2d, g_conics, g_depths, _g_radii):
        means, quats, scales, w2c, K, radii = ctx.saved_tensors
        width, height, eps2d = ctx.config
        C, N = radii.shape[:2]
        g_means2d = _grad_or_zeros(g_means2d, torch.empty(C, N, 2, dtype=means.dtype))
        g_conics = _grad_or_zeros(g_conics, torch.empty(C, N, 3, dtype=means.dtype))
        g_depths = _grad_or_zeros(g_depths, torch.empty(C, N, dtype=means.dtype))
        g_means, g_quats, g_scales, g_w2c = _ops().project_bwd(
            means, quats, scales, w2c, K, radii, width, height, eps2d, g_means2d, g_conics, g_depths,
            ctx.needs_input_grad[3],
        )
        return g_means, g_quats, g_scales, (g_w2c if ctx.needs_input_grad[3] else None), *([None] * 7)


class _RasterizeFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means2d, conics, opacities, values, radii, depths, width, height, tile_size):
        image, alpha, final_T, n_contrib, binning = _ops().rasterize_fwd(
            means2d, conics, opacities, values, radii, depths, width, height, tile_size
        )
        ctx.save_for_backward(values, final_T, n_contrib, *binning)
        ctx.tile_size = tile_size
        return image, alpha

    @staticmethod
    @once_differentiable
    def backward(ctx, g_image, g_alpha):
        values, final_T, n_contrib, *binning = ctx.saved_tensors
        g_image = _grad_or_zeros(g_image, torch.empty(*final_T.shape, values.shape[2], dtype=values.dtype))
        g_alpha = None if g_alpha is None else g_alpha.contiguous()
        g_means2d, g_conics, g_opacities, g_values = _ops().rasterize_bwd(
            binning, values, final_T, n_contrib, g_image, g_alpha, ctx.tile_size
        )
        return g_means2d, g_conics, g_opacities, g_values, None, None, None, None, None


def project(
    gaussians: Gaussians, cameras: Cameras, eps2d: float = 0.3, near_plane: float = 0.01, far_plane: float = 1e10
) -> Projection:
    """EWA-project ``gaussians`` into every camera: the contract of ``_torch_impl.project``."""
    dtype = gaussians.dtype
    w2c = cameras.w2c.to(dtype).contiguous()
    K = cameras.K.to(dtype).detach().contiguous()
    means2d, conics, depths, radii = _ProjectFn.apply(
        gaussians.means.contiguous(),
        gaussians.quats_wxyz.contiguous(),
        gaussians.scales.contiguous(),
        w2c,
        gaussians.opacities.detach().contiguous(),
        K,
        cameras.width,
        cameras.height,
        float(eps2d),
        float(near_plane),
        float(far_plane),
    )
    opacities = gaussians.opacities[None].expand(len(cameras), len(gaussians))
    return Projection(means2d, conics, depths, opacities, radii)


def rasterize(
    proj: Projection,
    values: Tensor,  # [C, N, D] per-camera channels to composite (colour, depth, features)
    width: int,
    height: int,
    tile_size: int = DEFAULT_TILE_SIZE,
) -> tuple[Tensor, Tensor]:
    """Composite projected Gaussians front to back: the contract of ``_torch_impl.rasterize``.

    Returns ``(image [C, H, W, D], alpha [C, H, W, 1])`` with no background applied.
    """
    return _RasterizeFn.apply(
        proj.means2d.contiguous(),
        proj.conics.contiguous(),
        proj.opacities.contiguous(),
        values.contiguous(),
        proj.radii.contiguous(),
        proj.depths.detach().contiguous(),
        width,
        height,
        tile_size,
    )


def main(argv: list[str] | None = None) -> int:
    """Build (or find in the cache) the kernel and say where it is; exit 1 when it cannot be built."""
    parser = argparse.ArgumentParser(prog="renderer._cpu", description=main.__doc__)
    parser.add_argument("--quiet", action="store_true", help="print the compiler's output only on failure")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    try:
        build(verbose=not args.quiet)
    except Exception as exc:
        print(f"renderer: compiled CPU splatting kernel unavailable: {exc}")
        return 1
    suffix, isa = _isa_flags()
    cache = cpp_extension._get_build_directory(_build_name(suffix), verbose=False)
    print(f"renderer: CPU splatting kernel ready ({suffix}, {time.perf_counter() - t0:.1f} s) in {cache}")
    return 0

