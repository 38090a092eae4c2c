"""``recon examples [--out DIR] [--photos]``: write the example inputs the project makes itself.

- The example scene: a procedural Gaussian toy (torus, sphere and a checkered disc) and an 8-view
  orbit rig, written as ``DIR/{gaussians.ply, cameras.json}``; generated from a fixed seed in a
  second rather than shipped as a multi-megabyte binary.
- ``--photos``: the example photo sets of ``assets/examples`` (procedural objects rendered by our own
  data engine, so licence-clean): ``recon examples --photos --out assets/examples``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from recon.cli.spec import EXIT_OK, Command
from recon.data.procedural.item import make_item
from recon.io import write_cameras_json
from recon.io.images import write_png
from renderer import Cameras, Gaussians
from renderer.io import write_ply
from renderer.sh import SH_C0


def _frame_quats(normals: torch.Tensor) -> torch.Tensor:
    """Unit quaternions (wxyz) rotating local +z onto ``normals [N, 3]`` (flat discs lie on the surface)."""
    z = torch.tensor([0.0, 0.0, 1.0])
    axis = torch.linalg.cross(z.expand_as(normals), normals)
    w = 1.0 + normals[:, 2]
    q = torch.cat([w[:, None], axis], dim=-1)
    flip = w < 1e-6  # normal = -z: rotate by pi about x
    q[flip] = torch.tensor([0.0, 1.0, 0.0, 0.0])
    return torch.nn.functional.normalize(q, dim=-1)


def make_example(seed: int = 0) -> Gaussians:
    gen = torch.Generator().manual_seed(seed)
    parts = []

    # Torus around z, radius 0.55 / 0.18, striped in hue.
    n = 14000
    u, v = torch.rand(n, generator=gen) * 2 * math.pi, torch.rand(n, generator=gen) * 2 * math.pi
    R, r = 0.55, 0.18
    centre = torch.stack([R * torch.cos(u), R * torch.sin(u), torch.zeros(n)], -1)
    normal = torch.stack([torch.cos(v) * torch.cos(u), torch.cos(v) * torch.sin(u), torch.sin(v)], -1)
    pts = centre + r * normal + torch.tensor([0.0, 0.0, 0.25])
    stripe = (torch.sin(6 * u) > 0).float()[:, None]
    rgb = stripe * torch.tensor([0.95, 0.45, 0.1]) + (1 - stripe) * torch.tensor([0.15, 0.35, 0.85])
    parts.append((pts, normal, rgb, 0.012))

    # Sphere in the hole, with a latitude gradient.
    n = 9000
    d = torch.nn.functional.normalize(torch.randn(n, 3, generator=gen), dim=-1)
    pts = 0.3 * d + torch.tensor([0.0, 0.0, 0.25])
    rgb = torch.stack([0.3 + 0.6 * (d[:, 2] + 1) / 2, 0.8 - 0.3 * (d[:, 2] + 1) / 2, 0.35 + 0.0 * d[:, 2]], -1)
    parts.append((pts, d, rgb, 0.012))

    # Checkered disc below.
    n = 12000
    rad, ang = 1.1 * torch.sqrt(torch.rand(n, generator=gen)), torch.rand(n, generator=gen) * 2 * math.pi
    pts = torch.stack([rad * torch.cos(ang), rad * torch.sin(ang), torch.full((n,), -0.1)], -1)
    check = ((torch.floor(pts[:, 0] / 0.2) + torch.floor(pts[:, 1] / 0.2)) % 2)[:, None]
    rgb = check * 0.85 + (1 - check) * 0.25 + torch.zeros(n, 3)
    parts.append((pts, torch.tensor([0.0, 0.0, 1.0]).expand(n, 3), rgb, 0.02))

    gs = []
    for pts, normal, rgb, size in parts:
        n = len(pts)
        scales = torch.stack([torch.full((n,), size), torch.full((n,), size), torch.full((n,), size * 0.15)], -1)
        g = Gaussians.from_rgb(pts, rgb, scales, torch.full((n,), 0.9), _frame_quats(normal), sh_degree=1)
        # A little view dependence (brighter seen from above) exercises the SH path.
        g.sh[:, 2] = 0.15 / SH_C0 * 0.3
        gs.append(g)
    return Gaussians.cat(gs)


def write_example(out: Path) -> None:
    """Write ``out/gaussians.ply`` and ``out/cameras.json`` (the folder is created)."""
    out.mkdir(parents=True, exist_ok=True)
    write_ply(out / "gaussians.ply", make_example())
    cams = Cameras.orbit(8, radius=2.6, elevation_deg=30, center=(0.0, 0.0, 0.2), up=(0, 0, 1), fov_deg=45,
                         width=384, height=288)
    write_cameras_json(out / "cameras.json", cams, files=[f"view_{i:02d}.png" for i in range(8)],
                       extra={"note": "orbit rig, z up, world units = metres, made by recon examples"})


# Example photo sets in assets/examples (licence-clean: rendered by our own data engine).
PHOTO_SETS = {  # name: (seed, views, with cameras.json)
    "toy_posed": (9_000_001, 4, True),
    "toy_unposed": (9_000_002, 4, False),
    "toy_single": (9_000_003, 1, False),
}


def write_photo_sets(out: Path, size: int = 256) -> list[Path]:
    """Render the example photo sets (procedural objects, white background) into ``out/<name>/``:
    ``view_XX.png`` and, for posed sets, ``cameras.json``. Deterministic: the same files every time."""
    written = []
    for name, (seed, views, posed) in PHOTO_SETS.items():
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        item = make_item(seed, n_inputs=views, n_targets=0, size=size)
        files = [f"view_{i:02d}.png" for i in range(views)]
        for img, f in zip(item.inputs.images, files):
            write_png(folder / f, img)
        if posed:
            write_cameras_json(folder / "cameras.json", item.inputs.cameras, files=files,
                               extra={"note": f"procedural object seed {seed}, z up, made by recon examples"})
        written.append(folder)
    return written


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("out/example"), help="output folder (default: out/example)")
    p.add_argument("--photos", action="store_true", help="write the example photo sets (assets/examples) instead")


def run(args: argparse.Namespace) -> int:
    if args.photos:
        folders = write_photo_sets(args.out)
        print(f"wrote {len(folders)} photo sets into {args.out}: {', '.join(f.name for f in folders)}")
    else:
        write_example(args.out)
        print(f"wrote the example scene into {args.out}: gaussians.ply, cameras.json")
    return EXIT_OK


EXAMPLES = Command(
    name="examples",
    help="write the example scene (Gaussians + cameras) or the example photo sets",
    description="Write the example inputs the project makes itself, from fixed seeds: the example Gaussian scene "
    "and its 8-view orbit cameras (DIR/gaussians.ply, DIR/cameras.json), or with --photos the example photo sets "
    "of assets/examples (DIR/<set>/view_XX.png and, for posed sets, cameras.json).",
    add_arguments=add_arguments,
    run=run,
)
