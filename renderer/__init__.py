"""Recon's lowest layer: cameras, Gaussians, splatting and Gaussian file IO.

Importing this package loads no CUDA code and no weights and compiles nothing: gsplat is imported on
first CUDA render, and the compiled CPU kernel is built (once, then cached) on first CPU render.
"""

from renderer._cpu import has_cpu_kernel
from renderer.cameras import Cameras
from renderer.errors import CameraError, FileFormatError, ReconError
from renderer.gaussians import Gaussians
from renderer.render import has_gsplat, render
from renderer.types import RenderOutput

__all__ = [
    "CameraError",
    "Cameras",
    "FileFormatError",
    "Gaussians",
    "ReconError",
    "RenderOutput",
    "has_cpu_kernel",
    "has_gsplat",
    "render",
]
