"""Run a method under named protocols: resolve names, check data, run each protocol, summarise.

The ``recon eval`` command (``recon.cli.eval``) and the benchmarks call ``run_eval``; errors name the
``EvalRequest`` fields, not command-line flags."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from recon.core.device import resolve_device
from recon.core.errors import ReconError
from recon.eval.protocol_base import ProtocolOverrides
from recon.eval.protocols import get_protocols
from recon.eval.registry import DEFAULT_METHOD, make_method
from recon.eval.runner import reusable_items, run_protocol

SUMMARY_KEYS = ("psnr", "ssim", "psnr_fg", "depth_abs_rel", "depth_rmse", "depth_coverage",
                "mesh_chamfer_l1", "mesh_fscore", "seconds_wall")


@dataclass
class EvalRequest:
    protocol: str  # protocol name or alias
    method: str = DEFAULT_METHOD
    data_dir: Path | None = None  # default: ../shared/eval_data next to the repo
    json_path: Path | None = None  # with several protocols, "-<protocol>" is added to the stem
    grid_path: Path | None = None
    limit: int | None = None
    device: str = "auto"
    checkpoint: Path | None = None  # model methods only; default checkpoints/default
    resume: bool = False  # keep the items already in json_path (same protocol and method), run the rest


class EarlierResultError(ReconError):
    """The results file to resume from (``EvalRequest.json_path``) cannot be read or is not one."""


def _per_protocol(path: Path | None, name: str, several: bool) -> Path | None:
    if path is None or not several:
        return path
    return path.with_name(f"{path.stem}-{name}{path.suffix}")


def run_eval(req: EvalRequest, progress: Callable[[str], None] | None = None) -> list[dict]:
    """Run ``req.method`` under every protocol ``req.protocol`` names; return the result dicts.

    Everything a user can get wrong (names, data folder, device, limit) is checked before the
    first reconstruction and reported as a one-line ``ReconError``.
    """
    overrides = ProtocolOverrides(limit=req.limit)
    protocols = get_protocols(req.protocol, req.data_dir, overrides)
    device = resolve_device(req.device)
    for p in protocols:
        p.check()
    several = len(protocols) > 1
    if req.resume and req.json_path is None:
        raise ReconError("resume needs json_path: the results file to go on from")
    earlier = {p.name: read_earlier(_per_protocol(req.json_path, p.name, several)) if req.resume else None
               for p in protocols}
    method = make_method(req.method, req.checkpoint)
    for p in protocols:  # a mismatch is reported before anything runs
        if earlier[p.name] is not None:
            reusable_items(earlier[p.name], p, method, device)
    return [
        run_protocol(p, method, _per_protocol(req.json_path, p.name, several), _per_protocol(req.grid_path, p.name, several),
                     device=device, progress=progress, resume=earlier[p.name])
        for p in protocols
    ]


def read_earlier(path: Path) -> dict | None:
    """An earlier results JSON to resume from; None when there is none yet (a fresh start)."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise EarlierResultError(f"cannot read {path}: {e}") from None
    if not isinstance(data, dict):
        raise EarlierResultError(f"{path} is not a results file")
    return data


def summary_table(results: list[dict]) -> str:
    """A small text table of the means: one row per (protocol, method)."""
    keys = [k for k in SUMMARY_KEYS if any(r["means"].get(k) is not None for r in results)]
    header = ["protocol", "method", "items", *keys]
    rows = []
    for r in results:
        name = r["protocol"]["name"] + ("" if r["full_protocol"] else " (partial)")
        cells = [name, r["method"]["name"], str(r["means"]["items"])]
        for k in keys:
            v = r["means"].get(k)
            cells.append("-" if v is None else f"{v:.4f}" if k in ("ssim", "depth_abs_rel", "mesh_fscore") else f"{v:.2f}")
        rows.append(cells)
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *(fmt(r) for r in rows)])
