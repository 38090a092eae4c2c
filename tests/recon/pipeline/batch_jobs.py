"""Job functions for the batch tests (importable by spawned workers and Ray tasks)."""

import time
from pathlib import Path

from recon.core.errors import ReconError


def fake_job(job_dir: Path, out_tmp: Path, options: dict) -> dict:
    """Reads ``value.txt`` (an integer), writes ``result.txt`` (its square) in two steps with a pause
    between them (so a kill can land mid-job); a non-integer is a user error (ReconError)."""
    text = (Path(job_dir) / "value.txt").read_text().strip()
    if not text.lstrip("-").isdigit():
        raise ReconError(f"{job_dir.name}/value.txt: not an integer: {text!r}")
    v = int(text)
    (Path(out_tmp) / "partial.txt").write_text("started")
    time.sleep(float(options.get("sleep", 0.0)))
    (Path(out_tmp) / "result.txt").write_text(str(v * v))
    return {"value": v, "square": v * v}
