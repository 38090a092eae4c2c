"""``recon eval PROTOCOL``: score a method under a fixed protocol (``recon.eval.command.run_eval``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from recon.cli.args import add_device
from recon.cli.spec import EXIT_OK, Command
from recon.core.errors import ReconError
from recon.eval.command import EarlierResultError, EvalRequest, run_eval, summary_table
from recon.eval.protocols import ALIASES, PROTOCOLS
from recon.eval.registry import DEFAULT_METHOD, METHODS


def add_arguments(p: argparse.ArgumentParser) -> None:
    aliases = [f"{a} (= {' + '.join(names)})" for a, names in ALIASES.items()]
    p.add_argument("protocol", metavar="PROTOCOL", help=", ".join([*PROTOCOLS, *aliases]))
    p.add_argument("--method", default=DEFAULT_METHOD, help=f"{', '.join(METHODS)} (default: {DEFAULT_METHOD})")
    p.add_argument("--data", type=Path, default=None,
                   help="eval data folder (default: ../shared/eval_data next to the repo)")
    p.add_argument("--json", type=Path, default=None, help="write results JSON here")
    p.add_argument("--grid", type=Path, default=None, help="write the GT | prediction | error PNG here")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N items (recorded as partial)")
    add_device(p)
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="checkpoint folder for the model methods (default: checkpoints/default)")
    p.add_argument("--resume", action="store_true",
                   help="keep the items already in --json (an interrupted or shorter run of the same protocol "
                   "and method) and evaluate only the rest")


def run(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 1:
        raise ReconError(f"--limit must be at least 1, got {args.limit}")
    if args.resume and args.json is None:
        raise ReconError("--resume needs --json: the results file to go on from")
    request = EvalRequest(protocol=args.protocol, method=args.method, data_dir=args.data, json_path=args.json,
                          grid_path=args.grid, limit=args.limit, device=args.device, checkpoint=args.checkpoint,
                          resume=args.resume)
    try:
        results = run_eval(request, progress=lambda line: print(line, file=sys.stderr))
    except EarlierResultError as e:
        raise ReconError(f"--resume: {e}") from None
    print(summary_table(results))
    return EXIT_OK


EVAL = Command(
    name="eval",
    help="run a reconstruction method under a fixed evaluation protocol",
    description="Evaluate METHOD under PROTOCOL (fixed views, resolution, background and metrics; see "
    "docs/protocols.md): writes per-view and mean metrics as JSON and a GT | prediction | error grid.",
    add_arguments=add_arguments,
    run=run,
)
