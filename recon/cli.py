"""The ``recon`` command line. Parsing lives here only; each command calls library functions.

Exit codes: 0 success, 2 bad input (one-line reason on stderr), 1 internal error.
"""

from __future__ import annotations

import argparse
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

    from recon.eval.protocols import ALIASES, PROTOCOLS  # names only: data and methods load when used
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
    return parser


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
        )
        results = run_eval(request, progress=lambda line: print(line, file=sys.stderr))
        print(summary_table(results))
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
    except Exception as e:  # a bug, not a user mistake: keep the traceback for the report
        traceback.print_exc()
        print(f"internal error: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
