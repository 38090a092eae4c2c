"""The ``recon`` command line. Parsing lives here only; each command calls library functions.

Exit codes: 0 success, 2 bad input (one-line reason on stderr), 1 internal error; ``recon train``
stopped by signal N exits with 128 + N after saving its state.
"""

from __future__ import annotations

import argparse
import signal
import sys
import traceback
from pathlib import Path

from recon import __version__
from recon.errors import ReconError

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage mistakes as ReconError (exit 2, one line) instead of exiting."""

    def error(self, message):
        raise ReconError(f"{self.prog}: {message} (see --help)")


def parse_views(text: str | None) -> list[int | str] | None:
    """``"0,3,5-7,r_26.png"`` -> [0, 3, 5, 6, 7, "r_26.png"]: indices, inclusive ranges, file names."""
    if text is None:
        return None
    views: list[int | str] = []
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        lo, sep, hi = item.partition("-")
        if item.isdigit():
            views.append(int(item))
        elif sep and lo.isdigit() and hi.isdigit():
            if int(hi) < int(lo):
                raise ReconError(f"--views: range {item!r} is empty")
            views.extend(range(int(lo), int(hi) + 1))
        else:
            views.append(item)
    if not views:
        raise ReconError("--views: no views given")
    return views


def parse_color(text: str) -> tuple[float, float, float]:
    """``white`` / ``black`` / ``R,G,B`` in [0, 1] -> RGB tuple."""
    named = {"white": (1.0, 1.0, 1.0), "black": (0.0, 0.0, 0.0), "gray": (0.5, 0.5, 0.5)}
    if text.lower() in named:
        return named[text.lower()]
    try:
        rgb = tuple(float(v) for v in text.split(","))
    except ValueError:
        rgb = ()
    if len(rgb) != 3 or not all(0.0 <= v <= 1.0 for v in rgb):
        raise ReconError(f"--background: expected white, black, gray or R,G,B in [0,1], got {text!r}")
    return rgb  # type: ignore[return-value]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="recon", description="Recon: photos to 3D Gaussians and meshes in one forward pass.")
    parser.add_argument("--version", action="version", version=f"recon {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    r = sub.add_parser(
        "render",
        help="render a Gaussian PLY/.splat at the cameras of a camera file into PNGs",
        description="Render Gaussians at the cameras of a camera file (cameras.json, transforms.json, "
        "COLMAP model, poses_bounds.npy, cameras_sphere.npz, or a dataset folder) into DIR.",
    )
    r.add_argument("gaussians", type=Path, help="Gaussians file (.ply in the 3DGS layout, or .splat)")
    r.add_argument("--cameras", type=Path, required=True, help="camera file or dataset folder")
    r.add_argument("--views", help="views to render: indices, ranges (0-7) or image names, comma separated")
    r.add_argument("--out", type=Path, required=True, help="output folder (created)")
    r.add_argument("--scale", type=float, default=1.0, help="render at this fraction of the camera resolution")
    r.add_argument("--background", default="white", help="white, black, gray or R,G,B in [0,1]")
    r.add_argument("--sh-degree", type=int, default=None, help="SH bands to use (default: all in the file)")
    r.add_argument("--save-alpha", action="store_true", help="write RGBA PNGs instead of RGB")
    r.add_argument("--save-depth", action="store_true", help="also write expected z-depth as float32 .npy")
    r.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])

    # names only: data and methods load when used
    from recon.eval.protocols import ALIASES, PROTOCOLS
    from recon.eval.registry import DEFAULT_METHOD, METHODS

    e = sub.add_parser(
        "eval",
        help="run a reconstruction method under a fixed evaluation protocol",
        description="Evaluate METHOD under PROTOCOL (fixed views, resolution, background and metrics; "
        "see docs/protocols.md): writes per-view and mean metrics as JSON and a GT | prediction | error grid.",
    )
    aliases = [f"{a} (= {' + '.join(names)})" for a, names in ALIASES.items()]
    e.add_argument("protocol", metavar="PROTOCOL", help=", ".join([*PROTOCOLS, *aliases]))
    e.add_argument("--method", default=DEFAULT_METHOD, help=f"{', '.join(METHODS)} (default: {DEFAULT_METHOD})")
    e.add_argument("--data", type=Path, default=None, help="eval data folder (default: ../shared/eval_data next to the repo)")
    e.add_argument("--json", type=Path, default=None, help="write results JSON here")
    e.add_argument("--grid", type=Path, default=None, help="write the GT | prediction | error PNG here")
    e.add_argument("--limit", type=int, default=None, help="evaluate only the first N items (recorded as partial)")
    e.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    e.add_argument("--checkpoint", type=Path, default=None,
                   help="checkpoint folder for the model methods (default: checkpoints/default)")
    e.add_argument("--resume", action="store_true",
                   help="keep the items already in --json (an interrupted or shorter run of the same protocol "
                   "and method) and evaluate only the rest")

    c = sub.add_parser(
        "reconstruct",
        help="photos (posed, unposed or one) to 3D Gaussians: gaussians.ply, cameras.json, report.json",
        description="Reconstruct INPUT (image files, a folder of images, or a dataset folder with cameras) into "
        "DIR: gaussians.ply, cameras.json (OpenCV, the input's world frame when posed), the requested exports "
        "and report.json (mode, pose method, timings, warnings).",
    )
    c.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="images, a folder of images, or a dataset folder")
    c.add_argument("--cameras", type=Path, default=None, help="camera file or dataset folder for the images (posed)")
    c.add_argument("--mode", default="auto", choices=["auto", "posed", "unposed", "single"])
    c.add_argument("--views", default=None, help="input views to use: indices, ranges (0-7) or image names")
    c.add_argument("--out", type=Path, required=True, help="output folder (created)")
    c.add_argument("--export", default="ply", help="comma-separated formats: ply (always written), splat, glb, obj")
    c.add_argument("--faces", type=_positive_int, default=20000, help="mesh face budget (glb/obj)")
    c.add_argument("--texture-size", type=int, default=1024, choices=[256, 512, 1024, 2048, 4096],
                   help="mesh texture edge in texels (glb/obj)")
    c.add_argument("--mesh-from", default="gaussians", choices=["gaussians", "sdf"],
                   help="surface for glb/obj: the Gaussians (default) or the triplane SDF (posed/single input)")
    c.add_argument("--texture-from", default="auto", choices=["auto", "photos", "model"],
                   help="mesh texture colours: auto (the input photos for posed input, else the model's), photos, model")
    c.add_argument("--refine-steps", type=int, default=0, help="photometric refinement steps on the inputs (default 0)")
    c.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    c.add_argument("--checkpoint", type=Path, default=None, help="checkpoint folder (default: checkpoints/default)")
    c.add_argument("--mask", default="auto", choices=["auto", "alpha", "grabcut", "none"],
                   help="single-image mode: the mask that crops the object (auto: alpha channel, else GrabCut); "
                        "several images: alpha channels are masks (silhouette carving, pose, textures) unless 'none'")
    c.add_argument("--foreground-ratio", type=float, default=0.85, help="object fill of the crop (single-image mode)")

    x = sub.add_parser(
        "export",
        help="re-export a reconstruction (gaussians.ply or a run folder) as a game-ready mesh",
        description="Mesh a reconstruction without re-running the model: Gaussians are rendered from virtual views "
        "and fused into a surface, cleaned, decimated to --faces, UV-unwrapped and textured. The format follows "
        "--to (.glb, .obj.zip, .obj, .ply, .stl). glTF conventions: +Y up (the run's mean camera up when "
        "cameras.json is there, else --up), --scale metres per unit, pivot at the bottom centre.",
    )
    x.add_argument("source", type=Path, metavar="GAUSSIANS.ply|RUN_DIR")
    x.add_argument("--to", type=Path, required=True, help="output mesh file")
    x.add_argument("--faces", type=_positive_int, default=20000)
    x.add_argument("--texture-size", type=int, default=1024, choices=[256, 512, 1024, 2048, 4096])
    x.add_argument("--lod", default="", help="extra levels as fractions of --faces, e.g. 0.25,0.06")
    x.add_argument("--up", default=None, help="source up axis as x,y,z (default: from cameras.json, else 0,0,1)")
    x.add_argument("--scale", type=float, default=1.0, help="metres per source unit")
    x.add_argument("--pivot", default="bottom_center", choices=["bottom_center", "center", "none"])
    x.add_argument("--vertex-colors", action="store_true", help="per-vertex colours instead of a texture")
    x.add_argument("--photos", type=Path, default=None, metavar="PATH",
                   help="the run's input photos (files or a folder, named as in cameras.json): texture projected "
                   "from them instead of the Gaussians' colours")

    b = sub.add_parser(
        "batch",
        help="reconstruct every sub-folder of ROOT (one job each) into OUT, resumable",
        description="Every sub-folder of ROOT is one job (images, optionally a camera file). Each job's outputs "
        "appear in OUT/<job>/ only when complete; failures are recorded in OUT/batch_report.json and do not stop "
        "the others; the exit code is 1 when any job failed.",
    )
    b.add_argument("root", type=Path, metavar="ROOT")
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--workers", type=_positive_int, default=1, help="parallel jobs (processes, or Ray tasks)")
    b.add_argument("--resume", action="store_true", help="skip jobs whose outputs are complete")
    b.add_argument("--engine", default="local", choices=["local", "ray"])
    b.add_argument("--address", default=None, help="Ray cluster address (default: start a local Ray instance)")
    b.add_argument("--export", default="ply", help="comma-separated formats per job: ply, splat, glb, obj")
    b.add_argument("--mode", default="auto", choices=["auto", "posed", "unposed", "single"])
    b.add_argument("--refine-steps", type=int, default=0)
    b.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    b.add_argument("--checkpoint", type=Path, default=None)

    t = sub.add_parser(
        "train",
        help="train the reconstruction model from a JSON config (resumes by default)",
        description="Train ReconModel from a JSON training config (see configs/, recon.train.config.TrainConfig) "
        "on CPU, one GPU, or many through torchrun (DDP). Resumes from OUT/checkpoints unless --no-resume. "
        "State is saved every few minutes, at the end, and on SIGTERM/SIGINT (exit code 128+signal).",
    )
    t.add_argument("config", type=Path, metavar="CONFIG", help="training config (JSON)")
    t.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="continue from the latest state in the out dir (default); --no-resume refuses an out dir "
                   "that holds state")
    t.add_argument("--max-steps", type=_positive_int, default=None, metavar="N",
                   help="train at most N more steps (default: up to the config's steps)")
    t.add_argument("--out", default=None, metavar="DIR", help="out dir (default: the config's out_dir)")
    t.add_argument("--time-limit", type=_positive_float, default=None, metavar="MINUTES",
                   help="stop and save after this much wall time (default: the config's time_limit_minutes)")

    a = sub.add_parser(
        "app",
        help="serve the web app (upload photos, see and download the 3D) on HOST:PORT",
        description="Load the model once and serve the Gradio web app; Ctrl-C stops it.",
    )
    a.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    a.add_argument("--port", type=_positive_int, default=7860)
    a.add_argument("--checkpoint", type=Path, default=None, help="checkpoint folder (default: checkpoints/default)")
    a.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    return parser


def _positive_float(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        x = 0.0
    if not x > 0 or x == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return x


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return n


def _formats(text: str) -> tuple[str, ...]:
    from recon.pipeline.run import FORMATS

    formats = tuple(dict.fromkeys(f.strip().lower() for f in text.split(",") if f.strip()))
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ReconError(f"--export: unknown format(s) {', '.join(bad)}; available: {', '.join(FORMATS)}")
    return formats or ("ply",)


def _batch_progress():
    """A rich progress bar with ETA and one status line per finished job (stderr)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    bar = Progress(TextColumn("batch"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console,
                   transient=False)
    state: dict = {}

    def update(result: dict, done: int, total: int) -> None:
        if "task" not in state:
            bar.start()
            state["task"] = bar.add_task("jobs", total=total, completed=done - 1)
        status = result["status"] + (f": {result['error']}" if result.get("error") else "")
        bar.console.print(f"{result['job']}: {status} ({result['seconds']:.1f} s)")
        bar.update(state["task"], completed=done)
        if done >= total:
            bar.stop()

    return update


def _run(args: argparse.Namespace) -> int:
    if args.command == "render":
        from recon.render_cmd import RenderRequest, render_to_folder

        request = RenderRequest(
            gaussians_path=args.gaussians,
            cameras_path=args.cameras,
            out_dir=args.out,
            views=parse_views(args.views),
            scale=args.scale,
            background=parse_color(args.background),
            sh_degree=args.sh_degree,
            save_alpha=args.save_alpha,
            save_depth=args.save_depth,
            device=args.device,
        )
        summary = render_to_folder(request, progress=sys.stderr.isatty())
        print(f"rendered {summary['views']} views of {summary['gaussians']} Gaussians into {args.out}")
        return EXIT_OK
    if args.command == "eval":
        from recon.eval.command import EvalRequest, run_eval, summary_table

        request = EvalRequest(
            protocol=args.protocol,
            method=args.method,
            data_dir=args.data,
            json_path=args.json,
            grid_path=args.grid,
            limit=args.limit,
            device=args.device,
            checkpoint=args.checkpoint,
            resume=args.resume,
        )
        results = run_eval(request, progress=lambda line: print(line, file=sys.stderr))
        print(summary_table(results))
        return EXIT_OK
    if args.command == "reconstruct":
        from recon.pipeline.run import ReconstructOptions, reconstruct

        formats = _formats(args.export)
        if args.out.exists() and not args.out.is_dir():
            raise ReconError(f"{args.out}: output path exists and is not a folder")
        opts = ReconstructOptions(cameras=args.cameras, mode=args.mode, views=parse_views(args.views),
                                  refine_steps=args.refine_steps, device=args.device, checkpoint=args.checkpoint,
                                  mask=args.mask, foreground_ratio=args.foreground_ratio, mesh_from=args.mesh_from,
                                  texture_from=args.texture_from)
        result = reconstruct(args.inputs, opts)
        mesh_options = None
        if {"glb", "obj"} & set(formats):
            from recon.export import MeshExportOptions

            mesh_options = MeshExportOptions(faces=args.faces, texture_size=args.texture_size)
        result.save(args.out, formats, mesh_options)
        r = result.report
        views = f"{r['views']} view" + ("s" if r["views"] != 1 else "")
        print(f"{r['gaussians']} Gaussians from {views} ({r['mode']}, cameras: {r['pose_method']}) "
              f"in {r['timings']['total_before_export']:.2f} s -> {args.out}")
        for w in r["warnings"]:
            print(f"warning: {w}", file=sys.stderr)
        return EXIT_OK
    if args.command == "export":
        from recon.pipeline.export_cmd import ExportRequest, export_from_run

        rep = export_from_run(ExportRequest(source=args.source, to=args.to, faces=args.faces,
                                            texture_size=args.texture_size, lods=args.lod, up=args.up,
                                            scale=args.scale, pivot=args.pivot, vertex_colors=args.vertex_colors,
                                            photos=args.photos))
        print(f"{rep['faces']} faces, {rep['vertices']} vertices -> {', '.join(str(f) for f in rep['files'])}")
        return EXIT_OK
    if args.command == "batch":
        from recon.pipeline.batch import BatchOptions, run_batch

        job_options = {"mode": args.mode, "refine_steps": args.refine_steps, "device": args.device,
                       "checkpoint": str(args.checkpoint) if args.checkpoint else None, "export": list(_formats(args.export))}
        opts = BatchOptions(workers=args.workers, resume=args.resume, engine=args.engine, address=args.address,
                            job_options=job_options)
        report = run_batch(args.root, args.out, opts, progress=_batch_progress())
        print(f"{report['ok']} done, {report['failed']} failed, {report['skipped']} skipped "
              f"in {report['seconds']:.1f} s; report: {args.out / 'batch_report.json'}")
        return EXIT_INTERNAL if report["failed"] else EXIT_OK
    if args.command == "train":
        from recon.train.trainer import train

        tr = train(args.config, resume=args.resume, max_steps=args.max_steps, out_dir=args.out,
                   time_limit_minutes=args.time_limit)
        if tr.rank == 0:
            print(f"step {tr.step} of {tr.cfg.steps}: state in {tr.out / 'checkpoints'}, EMA weights in {tr.out / 'export'}")
        if tr.stop_signal is not None:
            if tr.rank == 0:
                print(f"stopped by {signal.Signals(tr.stop_signal).name}; run the same command again to resume",
                      file=sys.stderr)
            return 128 + tr.stop_signal
        return EXIT_OK
    if args.command == "app":
        from app.main import launch

        launch(args.host, args.port, args.checkpoint, device=args.device)
        return EXIT_OK
    build_parser().print_help()
    return EXIT_BAD_INPUT


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return _run(args)
    except ReconError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 (a bug, not a user mistake: keep the traceback for the report)
        traceback.print_exc()
        print(f"internal error: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
