"""``recon export GAUSSIANS.ply|RUN_DIR --to FILE``: a saved reconstruction to a game-ready mesh
(``recon.pipeline.reexport.export_from_run``), without re-running the model."""

from __future__ import annotations

import argparse
from pathlib import Path

from recon.cli.args import TEXTURE_SIZES, parse_floats, positive_float, positive_int
from recon.cli.spec import EXIT_OK, Command
from recon.core.errors import ReconError
from recon.pipeline.reexport import ExportRequest, export_from_run


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", type=Path, metavar="GAUSSIANS.ply|RUN_DIR")
    p.add_argument("--to", type=Path, required=True, help="output mesh file")
    p.add_argument("--faces", type=positive_int, default=20000)
    p.add_argument("--texture-size", type=int, default=1024, choices=TEXTURE_SIZES)
    p.add_argument("--lod", default="", help="extra levels as fractions of --faces, e.g. 0.25,0.06")
    p.add_argument("--up", default=None, help="source up axis as x,y,z (default: from cameras.json, else 0,0,1)")
    p.add_argument("--scale", type=positive_float, default=1.0, help="metres per source unit")
    p.add_argument("--pivot", default="bottom_center", choices=["bottom_center", "center", "none"])
    p.add_argument("--vertex-colors", action="store_true", help="per-vertex colours instead of a texture")
    p.add_argument("--photos", type=Path, default=None, metavar="PATH",
                   help="the run's input photos (files or a folder, named as in cameras.json): texture projected "
                   "from them instead of the Gaussians' colours")


def request_from_args(args: argparse.Namespace) -> ExportRequest:
    """The library's request from the parsed flags; a bad value is reported with its flag."""
    lods = parse_floats(args.lod, "--lod") if args.lod else ()
    if any(not 0 < v < 1 for v in lods):
        raise ReconError(f"--lod: fractions must be in (0, 1), got {args.lod!r}")
    up = parse_floats(args.up, "--up", count=3) if args.up is not None else None
    if up is not None and sum(a * a for a in up) < 1e-12:
        raise ReconError("--up must not be the zero vector")
    if args.photos is not None and not args.photos.exists():
        raise ReconError(f"--photos {args.photos}: no such file or folder")
    return ExportRequest(source=args.source, to=args.to, faces=args.faces, texture_size=args.texture_size, lods=lods,
                         up=up, scale=args.scale, pivot=args.pivot, vertex_colors=args.vertex_colors,
                         photos=args.photos)


def run(args: argparse.Namespace) -> int:
    report = export_from_run(request_from_args(args))
    print(f"{report['faces']} faces, {report['vertices']} vertices -> {', '.join(str(f) for f in report['files'])}")
    return EXIT_OK


EXPORT = Command(
    name="export",
    help="re-export a reconstruction (gaussians.ply or a run folder) as a game-ready mesh",
    description="Mesh a reconstruction without re-running the model: Gaussians are rendered from virtual views and "
    "fused into a surface, cleaned, decimated to --faces, UV-unwrapped and textured. The format follows --to "
    "(.glb, .obj.zip, .obj, .ply, .stl). glTF conventions: +Y up (the run's mean camera up when cameras.json is "
    "there, else --up), --scale metres per unit, pivot at the bottom centre.",
    add_arguments=add_arguments,
    run=run,
)
