"""``recon reconstruct INPUT... --out DIR``: photos to Gaussians (and meshes), through the same stages
as the Python API: ``recon.pipeline.run.reconstruct`` then ``recon.pipeline.write.write_outputs``."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from recon.cli.args import (
    MODES,
    TEXTURE_SIZES,
    add_device,
    at_least_zero,
    check_out_flag,
    number_in,
    parse_formats,
    parse_views,
    positive_int,
)
from recon.cli.spec import EXIT_OK, Command
from recon.core.text import utf8_text
from recon.export import MeshExportOptions
from recon.pipeline.options import MaskSource, MeshFrom, ReconstructOptions, TextureFrom
from recon.pipeline.run import reconstruct
from recon.pipeline.write import write_outputs


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="images, a folder of images, or a dataset folder")
    p.add_argument("--cameras", type=Path, default=None, help="camera file or dataset folder for the images (posed)")
    p.add_argument("--mode", default="auto", choices=MODES)
    p.add_argument("--views", default=None, help="input views to use: indices, ranges (0-7) or image names")
    p.add_argument("--out", type=Path, required=True, help="output folder (created)")
    p.add_argument("--export", default="ply", help="comma-separated formats: ply (always written), splat, glb, obj")
    p.add_argument("--faces", type=positive_int, default=20000, help="mesh face budget (glb/obj)")
    p.add_argument("--texture-size", type=int, default=1024, choices=TEXTURE_SIZES,
                   help="mesh texture edge in texels (glb/obj)")
    p.add_argument("--mesh-from", default="gaussians", choices=[m.value for m in MeshFrom],
                   help="surface for glb/obj: the Gaussians (default) or the triplane SDF (posed/single input)")
    p.add_argument("--texture-from", default="auto", choices=[t.value for t in TextureFrom],
                   help="mesh texture colours: auto (the input photos for posed input, else the model's), photos, model")
    p.add_argument("--refine-steps", type=int, default=0,
                   help="at most N photometric refinement steps on the inputs (default 0; reproducible runs)")
    p.add_argument("--refine-seconds", type=number_in(0, 1e6, lo_open=False), default=0.0,
                   help="wall-clock budget of the refinement, seconds (default 0: none; with --refine-steps 0 the "
                        "budget alone decides how many steps)")
    add_device(p)
    p.add_argument("--checkpoint", type=Path, default=None, help="checkpoint folder (default: checkpoints/default)")
    p.add_argument("--mask", default="auto", choices=[m.value for m in MaskSource],
                   help="single-image mode: the mask that crops the object (auto: alpha channel, else GrabCut); "
                        "several images: alpha channels are masks (silhouette carving, pose, textures) unless 'none'")
    p.add_argument("--foreground-ratio", type=number_in(0, 1), default=0.85,
                   help="object fill of the crop, in (0, 1] (single-image mode)")


def options_from_args(args: argparse.Namespace) -> ReconstructOptions:
    """The library's options from the parsed flags; a bad value is reported with its flag."""
    return ReconstructOptions(cameras=args.cameras, mode=args.mode, views=parse_views(args.views),
                              refine_steps=at_least_zero(args.refine_steps, "--refine-steps"),
                              refine_seconds=args.refine_seconds, device=args.device,
                              checkpoint=args.checkpoint, mask=args.mask, foreground_ratio=args.foreground_ratio,
                              mesh_from=args.mesh_from, texture_from=args.texture_from)


@contextlib.contextmanager
def refine_progress(opts: ReconstructOptions):
    """A refinement progress bar on stderr (over the budget's seconds, else the steps), as the
    ``on_refine_step`` callback; None when nothing is refined or stderr is not a terminal."""
    steps, seconds = opts.refine_limits()
    console = Console(stderr=True)
    if steps == 0 or not console.is_terminal:
        yield None
        return
    columns = (TextColumn("refining"), BarColumn(), TextColumn("{task.fields[psnr]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("refine", total=seconds if seconds is not None else steps, psnr="")

        def on_step(step: int, elapsed: float, psnr: float) -> None:
            done = elapsed if seconds is not None else step
            bar.update(task, completed=done, psnr=f"step {step}, input PSNR {psnr:.2f} dB")

        yield on_step


def run(args: argparse.Namespace) -> int:
    formats = parse_formats(args.export)
    check_out_flag(args.out)  # an unusable --out is refused before the model loads
    opts = options_from_args(args)
    with refine_progress(opts) as on_step:
        result = reconstruct(args.inputs, opts, on_refine_step=on_step)
    written = write_outputs(result, args.out, formats,
                            MeshExportOptions(faces=args.faces, texture_size=args.texture_size))
    r = written.report
    views = f"{r['views']} view" + ("s" if r["views"] != 1 else "")
    print(utf8_text(f"{r['gaussians']} Gaussians from {views} ({r['mode']}, cameras: {r['pose_method']}) "
                    f"in {r['timings']['total']:.2f} s -> {args.out}"))
    for w in r["warnings"]:
        print(utf8_text(f"warning: {w}"), file=sys.stderr)
    return EXIT_OK


RECONSTRUCT = Command(
    name="reconstruct",
    help="photos (posed, unposed or one) to 3D Gaussians: gaussians.ply, cameras.json, report.json",
    description="Reconstruct INPUT (image files, a folder of images, or a dataset folder with cameras) into DIR: "
    "gaussians.ply, cameras.json (OpenCV, the input's world frame when posed), the requested exports and "
    "report.json (mode, pose method, timings, warnings).",
    add_arguments=add_arguments,
    run=run,
)
