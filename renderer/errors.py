"""Errors a user can cause. Each carries a one-line message; the CLI maps them to exit code 2."""

from __future__ import annotations


class ReconError(Exception):
    """Base of every error caused by user input (bad file, bad argument). One-line message."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class FileFormatError(ReconError):
    """A file is missing, unreadable, or does not hold what its format promises."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class CameraError(ReconError):
    """Camera parameters are invalid (NaN, non-invertible pose, bad intrinsics, wrong counts)."""
