"""A run's ``log.jsonl``: one JSON record per line (a logged step or an eval), each with its ``step``.

Only rank 0 writes it. A resumed run first cuts it back to the state it resumes from
(``truncate_log``), so that the log never holds steps the run takes again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def append_log(path: Path, rec: dict) -> None:
    """Append ``rec`` as one line to ``path`` (its folder is made when missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(rec) + "\n")


def read_log(path: Path) -> list[dict]:
    """Every record of ``path`` in order (blank lines skipped)."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def truncate_log(path: Path, step: int) -> None:
    """Drop the records of ``path`` after ``step`` (written by a run killed before its next save),
    and lines cut short by a kill; the file is replaced atomically, and only when something goes."""
    if not path.exists():
        return
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    keep = []
    for ln in lines:
        try:
            if int(json.loads(ln).get("step", 0)) <= step:
                keep.append(ln)
        except (ValueError, AttributeError):
            continue  # a line cut short by a kill
    if len(keep) != len(lines):
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        tmp.write_text("".join(ln + "\n" for ln in keep))
        os.replace(tmp, path)
