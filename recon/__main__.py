"""``python -m recon COMMAND ...``: recon's own commands (the web app starts with ``recon app`` or ``python -m app``)."""

import sys

from recon.cli import main

sys.exit(main())
