"""What a command of the ``recon`` command line is: a name, its help, the function that adds its
arguments, and the function that runs it on the parsed arguments and returns the exit code."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT = 0, 1, 2


@dataclass(frozen=True)
class Command:
    name: str
    help: str  # one line, in ``recon --help``
    description: str  # the paragraph of ``recon NAME --help``
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]  # returns the exit code; raises ReconError for user mistakes
