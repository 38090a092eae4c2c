"""The ``recon`` command line: one module per command, each with its arguments and a ``run``
function that calls the library, and a table-driven dispatch.

- ``recon.cli.spec``: what a command is (``Command``) and the exit codes;
- ``recon.cli.args``: parsing shared by the commands (view lists, colours, positive numbers, formats);
- ``recon.cli.reconstruct``, ``render``, ``batch``, ``export``, ``eval``, ``train``, ``examples``: the commands;
- ``recon.cli.dispatch``: ``COMMANDS``, ``build_parser`` and ``main``.

``python -m recon`` runs these commands. The console script ``recon`` is ``app.cli:main``: the same
``main`` with the web app's command (``recon app``) added, so that nothing in recon imports app.
"""

from recon.cli.dispatch import COMMANDS, build_parser, main
from recon.cli.spec import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_OK, Command

__all__ = ["COMMANDS", "EXIT_BAD_INPUT", "EXIT_INTERNAL", "EXIT_OK", "Command", "build_parser", "main"]
