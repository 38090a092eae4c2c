"""The dispatch of the ``recon`` command line: one parser built from a table of ``Command``s, one
``main`` that runs the chosen command and maps what went wrong to an exit code.

Exit codes: 0 success, 2 bad input (a one-line reason on stderr), 1 internal error (with the
traceback); ``recon batch`` exits 1 when a job failed, and ``recon train`` stopped by signal N exits
with 128 + N after saving its state.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from recon import __version__
from recon.cli.args import Parser
from recon.cli.batch import BATCH
from recon.cli.eval import EVAL
from recon.cli.examples import EXAMPLES
from recon.cli.export import EXPORT
from recon.cli.reconstruct import RECONSTRUCT
from recon.cli.render import RENDER
from recon.cli.spec import EXIT_BAD_INPUT, EXIT_INTERNAL, Command
from recon.cli.train import TRAIN
from recon.core.errors import ReconError
from recon.core.text import utf8_text

# recon's own commands, in the order ``recon --help`` lists them. The web app's command lives in the
# app package (``app.cli``), which passes it to ``main`` as an extra command: recon never imports app.
COMMANDS: tuple[Command, ...] = (RECONSTRUCT, RENDER, BATCH, EXPORT, EVAL, TRAIN, EXAMPLES)

APP_HINT = ("the web app is not one of python -m recon's commands: start it with the console script "
            "(recon app [--host H] [--port P]) or python -m app")


def build_parser(commands: Sequence[Command] = COMMANDS) -> argparse.ArgumentParser:
    """The ``recon`` parser with one sub-command per entry of ``commands``."""
    parser = Parser(prog="recon", description="Recon: photos to 3D Gaussians and meshes in one forward pass.")
    parser.add_argument("--version", action="version", version=f"recon {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for command in commands:
        command.add_arguments(sub.add_parser(command.name, help=command.help, description=command.description))
    return parser


def _first_word(argv: Sequence[str]) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: Sequence[str] | None = None, extra: Sequence[Command] = ()) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``) with recon's ``COMMANDS`` and ``extra``
    ones; returns the exit code. User mistakes (``ReconError``) print one line, ``error: ...``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {c.name: c for c in (*COMMANDS, *extra)}
    parser = build_parser(tuple(commands.values()))
    try:
        if _first_word(argv) == "app" and "app" not in commands:
            raise ReconError(APP_HINT)
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_BAD_INPUT
        return commands[args.command].run(args)
    except ReconError as e:
        print(utf8_text(f"error: {e}"), file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 (a bug, not a user mistake: keep the traceback for the report)
        traceback.print_exc()
        print(f"internal error: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_INTERNAL
