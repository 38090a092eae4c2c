"""Writing a benchmark's JSON result: folders made, the file replaced only by a complete one."""

from __future__ import annotations

import json
from pathlib import Path

from renderer.io.atomic import atomic_output


def write_json(path: Path, result: dict, indent: int = 1) -> None:
    """Write ``result`` to ``path`` as JSON (creating its folder; atomically, never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as f:
        f.write(json.dumps(result, indent=indent).encode())
