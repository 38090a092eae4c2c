"""User-caused errors (re-exported from the renderer layer so that every package shares one base)."""

from renderer.errors import CameraError, FileFormatError, ReconError

__all__ = ["CameraError", "FileFormatError", "ReconError"]
