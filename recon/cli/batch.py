"""``recon batch ROOT --out OUT``: one reconstruction job per sub-folder of ROOT, resumable
(``recon.pipeline.batch.run_batch``); a progress bar with ETA and one line per finished job."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from recon.cli.args import MODES, add_device, at_least_zero, parse_formats, positive_int
from recon.cli.spec import EXIT_INTERNAL, EXIT_OK, Command
from recon.pipeline.batch import BATCH_REPORT, BatchOptions, run_batch


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("root", type=Path, metavar="ROOT")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--workers", type=positive_int, default=1, help="parallel jobs (processes, or Ray tasks)")
    p.add_argument("--resume", action="store_true", help="skip jobs whose outputs are complete")
    p.add_argument("--engine", default="local", choices=["local", "ray"])
    p.add_argument("--address", default=None, help="Ray cluster address (default: start a local Ray instance)")
    p.add_argument("--export", default="ply", help="comma-separated formats per job: ply, splat, glb, obj")
    p.add_argument("--mode", default="auto", choices=MODES)
    p.add_argument("--refine-steps", type=int, default=0)
    add_device(p)
    p.add_argument("--checkpoint", type=Path, default=None)


def run(args: argparse.Namespace) -> int:
    job_options = {"mode": args.mode, "refine_steps": at_least_zero(args.refine_steps, "--refine-steps"),
                   "device": args.device, "checkpoint": str(args.checkpoint) if args.checkpoint else None,
                   "export": list(parse_formats(args.export))}
    opts = BatchOptions(workers=args.workers, resume=args.resume, engine=args.engine, address=args.address,
                        job_options=job_options)
    report = run_batch(args.root, args.out, opts, progress=progress_bar())
    print(f"{report['ok']} done, {report['failed']} failed, {report['skipped']} skipped "
          f"in {report['seconds']:.1f} s; report: {args.out / BATCH_REPORT}")
    return EXIT_INTERNAL if report["failed"] else EXIT_OK


def progress_bar() -> Callable[[dict, int, int], None]:
    """``run_batch``'s progress callback: a rich bar with ETA and one status line per finished job (stderr)."""
    bar = Progress(TextColumn("batch"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=Console(stderr=True), transient=False)
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


BATCH = Command(
    name="batch",
    help="reconstruct every sub-folder of ROOT (one job each) into OUT, resumable",
    description="Every sub-folder of ROOT is one job (images, optionally a camera file). Each job's outputs appear "
    "in OUT/<job>/ only when complete; failures are recorded in OUT/batch_report.json and do not stop the others; "
    "the exit code is 1 when any job failed.",
    add_arguments=add_arguments,
    run=run,
)
