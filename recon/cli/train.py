"""``recon train CONFIG``: train the model from a JSON config (``recon.train.trainer.train``); stopped by
signal N, it saves its state and exits with 128 + N."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from recon.cli.args import positive_float, positive_int
from recon.cli.spec import EXIT_OK, Command
from recon.train.trainer import train


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", type=Path, metavar="CONFIG", help="training config (JSON)")
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="continue from the latest state in the out dir (default); --no-resume refuses an out dir "
                   "that holds state")
    p.add_argument("--max-steps", type=positive_int, default=None, metavar="N",
                   help="train at most N more steps (default: up to the config's steps)")
    p.add_argument("--out", default=None, metavar="DIR", help="out dir (default: the config's out_dir)")
    p.add_argument("--time-limit", type=positive_float, default=None, metavar="MINUTES",
                   help="stop and save after this much wall time (default: the config's time_limit_minutes)")


def run(args: argparse.Namespace) -> int:
    tr = train(args.config, resume=args.resume, max_steps=args.max_steps, out_dir=args.out,
               time_limit_minutes=args.time_limit)
    if tr.rank == 0:
        print(f"step {tr.step} of {tr.cfg.steps}: state in {tr.out / 'checkpoints'}, EMA weights in {tr.out / 'export'}")
    if tr.stop_signal is None:
        return EXIT_OK
    if tr.rank == 0:
        print(f"stopped by {signal.Signals(tr.stop_signal).name}; run the same command again to resume", file=sys.stderr)
    return 128 + tr.stop_signal


TRAIN = Command(
    name="train",
    help="train the reconstruction model from a JSON config (resumes by default)",
    description="Train ReconModel from a JSON training config (see configs/, recon.train.config.TrainConfig) on CPU, "
    "one GPU, or many through torchrun (DDP). Resumes from OUT/checkpoints unless --no-resume. State is saved "
    "every few minutes, at the end, and on SIGTERM/SIGINT (exit code 128+signal).",
    add_arguments=add_arguments,
    run=run,
)
