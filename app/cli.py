"""The ``recon`` console script: recon's commands (``recon.cli``) plus ``recon app``, which serves the
web app. The app's command lives here, in the app package, because nothing in recon imports app."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from recon.cli import EXIT_OK, Command
from recon.cli import main as recon_main
from recon.cli.args import add_device, positive_int


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=positive_int, default=7860)
    p.add_argument("--checkpoint", type=Path, default=None, help="checkpoint folder (default: checkpoints/default)")
    add_device(p)


def run(args: argparse.Namespace) -> int:
    from app.main import launch  # imports gradio (seconds): only `recon app` pays for it

    launch(args.host, args.port, args.checkpoint, device=args.device)
    return EXIT_OK


APP = Command(
    name="app",
    help="serve the web app (upload photos, see and download the 3D) on HOST:PORT",
    description="Load the model once and serve the Gradio web app; Ctrl-C stops it.",
    add_arguments=add_arguments,
    run=run,
)


def main(argv: Sequence[str] | None = None) -> int:
    """``recon [COMMAND] ...``: recon's commands and ``app``; returns the exit code."""
    return recon_main(argv, extra=(APP,))
