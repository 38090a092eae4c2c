"""``python -m app [--host H] [--port P] [--checkpoint DIR] [--device D]``: serve the web app, as
``recon app`` does."""

import sys

from app.cli import main

sys.exit(main(["app", *sys.argv[1:]]))
