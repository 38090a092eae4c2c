"""Shared fixtures for the mesh-export tests: small analytic shapes and the Khronos glTF Validator."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from recon.core.types import Mesh
from renderer import Gaussians

ROOT = Path(__file__).resolve().parents[3]
NODE_DIR = ROOT / ".node"
VALIDATOR_VERSION = "2.0.0-dev.3.10"  # keep in step with scripts/setup.sh
SCRIPT = Path(__file__).with_name("gltf_validate.cjs")


def icosphere(radius: float = 0.5, subdivisions: int = 3, center=(0.0, 0.0, 0.0), extents=None) -> Mesh:
    """A trimesh icosphere as a ``Mesh`` (optionally stretched to ``extents`` / 2 semi-axes), colours from position."""
    import trimesh

    tm = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    v = np.asarray(tm.vertices, np.float64)
    if extents is not None:
        v = v / radius * (np.asarray(extents, np.float64) / 2)
    v = v + np.asarray(center, np.float64)
    colors = np.where(v[:, 2:3] > center[2], [[1.0, 0.0, 0.0]], [[0.0, 0.0, 1.0]])  # red above, blue below (z)
    return Mesh(torch.tensor(v, dtype=torch.float32), torch.tensor(np.asarray(tm.faces), dtype=torch.long),
                torch.tensor(colors, dtype=torch.float32))


def sphere_gaussians(n: int = 3000, radius: float = 0.5, center=(0.0, 0.0, 0.0), sigma: float = 0.02) -> Gaussians:
    """``n`` isotropic Gaussians on a Fibonacci lattice over a sphere (world frame), colour from the normal."""
    i = torch.arange(n, dtype=torch.float32) + 0.5
    phi = torch.acos(1 - 2 * i / n)
    theta = math.pi * (1 + 5**0.5) * i
    d = torch.stack([torch.cos(theta) * torch.sin(phi), torch.sin(theta) * torch.sin(phi), torch.cos(phi)], -1)
    return Gaussians.from_rgb(d * radius + torch.tensor(center), d * 0.5 + 0.5, torch.full((n, 3), sigma),
                              torch.full((n,), 0.9))


@pytest.fixture(scope="session")
def gltf_validator():
    """``validate(path) -> report dict`` with the Khronos glTF Validator; skips when node/npm are missing.

    The validator lives in the git-ignored ``.node/`` (``scripts/setup.sh --dev`` installs it); when
    it is missing and npm is present, this fixture installs it there once (idempotent).
    """
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None:
        pytest.skip("node is not installed: the Khronos glTF Validator (npm gltf-validator) cannot run")
    package = NODE_DIR / "node_modules" / "gltf-validator" / "package.json"
    if not package.exists() or json.loads(package.read_text()).get("version") != VALIDATOR_VERSION:
        if npm is None:
            pytest.skip("npm is not installed and .node/ has no gltf-validator: run scripts/setup.sh --dev")
        NODE_DIR.mkdir(exist_ok=True)
        done = subprocess.run([npm, "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(NODE_DIR),
                               f"gltf-validator@{VALIDATOR_VERSION}"], check=False, capture_output=True, text=True, timeout=300)
        if done.returncode != 0 or not package.exists():
            pytest.skip(f"could not install gltf-validator with npm: {done.stderr.strip()[-300:]}")

    def validate(path) -> dict:
        done = subprocess.run([node, str(SCRIPT), str(path)], check=False, capture_output=True, text=True, timeout=120,
                              env={"NODE_PATH": str(NODE_DIR / "node_modules"), "PATH": "/usr/bin:/bin"})
        if done.returncode not in (0, 1):
            raise RuntimeError(f"validator failed: {done.stderr}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    return validate
