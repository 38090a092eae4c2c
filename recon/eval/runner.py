"""Run one reconstruction method under one protocol: reconstruct, render the targets, score, write.

``run_protocol`` returns (and optionally writes as JSON) a result of this shape::

    {"format": "recon-eval/1", "protocol": {definition}, "method": {"name", "oracle"},
     "full_protocol": bool, "complete": bool, "overrides": {"limit", "size_scale"},
     "items": [{"id", "seconds_wall", "seconds_method", "seconds_render", "gaussians",
                "views": [{"name", "psnr", "ssim", ...}], "mean": {...}, "mesh": {...} | null,
                "info": {...}}],
     "means": {"psnr", "ssim", ..., "seconds_wall", "seconds_method", "items"},
     "resumed_items": int, "machine": {...}, "started_utc", "seconds_total"}

Means: each item's views are averaged first, then items are averaged (every item counts the
same); undefined values (``nan``, e.g. depth error with no covered pixel) are skipped, and are
written to JSON as ``null``. ``seconds_wall`` is the runner's clock around ``reconstruct``;
``seconds_method`` is what the method itself reported. ``complete`` is false while a run is under
way (the JSON is rewritten after every item); ``resumed_items`` counts items kept from an earlier
run of the same protocol and method, whose ``started_utc`` and ``seconds_total`` are not carried.
"""

from __future__ import annotations

import datetime
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from recon.core.device import machine_info, resolve_device
from recon.core.errors import ReconError
from recon.core.geometry import align_similarity, camera_errors
from recon.core.types import Method, Reconstruction
from recon.eval.grid import GridRow, write_grid
from recon.eval.metrics import depth_errors, mesh_metrics, psnr, ssim
from recon.eval.protocol_base import EvalProtocol, ProtocolOverrides
from renderer import render
from renderer.io.atomic import atomic_output

FORMAT = "recon-eval/1"
GRID_ITEMS = 2  # the grid shows every target view of the first GRID_ITEMS items a run evaluates
GRID_MAX_ROWS = 16


def _finite(value):
    """JSON-safe: nan/inf -> None; tensors and containers converted recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, torch.Tensor):
        return _finite(value.tolist()) if value.numel() <= 64 else f"tensor{tuple(value.shape)}"
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


def mean_metrics(rows: list[dict]) -> dict:
    """Mean of every numeric key over ``rows``, skipping None/nan/inf (keys with no value: None)."""
    keys = [k for k in dict.fromkeys(k for r in rows for k in r) if k != "name"]
    out = {}
    for k in keys:
        vals = [float(r[k]) for r in rows if isinstance(r.get(k), (int, float)) and not isinstance(r.get(k), bool)
                and math.isfinite(float(r[k]))]
        out[k] = sum(vals) / len(vals) if vals else None
    return out


def align_unposed(rec: Reconstruction, inputs) -> tuple[Reconstruction, dict]:
    """Move an unposed reconstruction into the protocol's world: the similarity that best maps the
    method's recovered camera centres (``rec.info["c2w_pred"]``) onto the input cameras' centres
    (Umeyama), applied to the Gaussians; returns it with the camera errors after alignment."""

    pred = torch.as_tensor(rec.info.pop("c2w_pred")).double().cpu()
    gt = inputs.cameras.c2w.double().cpu()
    scale, R, t = align_similarity(pred[:, :3, 3], gt[:, :3, 3])
    g = rec.gaussians.detach().to("cpu").transform(scale=float(scale), R=R.float(), t=t.float())
    rot_deg, trans_err = camera_errors(pred, gt)
    return Reconstruction(g, rec.mesh, rec.seconds, rec.info), pose_metrics(rot_deg, trans_err, rec.info.get("pose_solved"))


# A camera counts as accurate when its aligned rotation is within this many degrees of the truth
# (the RRA@15 threshold of RelPose/PoseDiffusion/VGGT, here per camera after the similarity alignment).
POSE_ACCURATE_DEG = 15.0


def pose_metrics(rot_deg: Tensor, trans_err: Tensor, solved: list[bool] | None = None) -> dict:
    """Per-item pose metrics over the non-reference cameras (index 1 on; the first is the world origin).

    ``pose_rot_deg`` / ``pose_trans_err``: mean errors over all of them. A camera the method did not
    solve (``solved[i]`` false) still has an output camera (the identity for ``recon-unposed``), so
    these means include it; ``pose_solved`` (fraction solved) and ``pose_rot_deg_solved`` /
    ``pose_trans_err_solved`` (means over the solved ones; None when none is) separate the two, and
    ``pose_acc15`` is the fraction solved *and* within ``POSE_ACCURATE_DEG`` degrees. Methods that
    do not say which cameras they solved count all as solved.
    """
    rot, tr = rot_deg[1:].double(), trans_err[1:].double()
    n = len(rot)
    if n == 0:
        return {"pose_rot_deg": 0.0, "pose_trans_err": 0.0}
    ok = torch.ones(n, dtype=torch.bool) if solved is None else torch.tensor([bool(s) for s in solved[1:]])
    if len(ok) != n:
        raise ValueError(f"pose_solved has {len(ok) + 1} entries for {n + 1} cameras")
    k = int(ok.sum())
    return {
        "pose_rot_deg": float(rot.mean()),
        "pose_trans_err": float(tr.mean()),
        "pose_solved": k / n,
        "pose_rot_deg_solved": float(rot[ok].mean()) if k else None,
        "pose_trans_err_solved": float(tr[ok].mean()) if k else None,
        "pose_acc15": float((ok & (rot < POSE_ACCURATE_DEG)).double().mean()),
    }


def reusable_items(previous: dict, protocol: EvalProtocol, method: Method, device: torch.device) -> dict[str, dict]:
    """Items of an earlier result of the same run, by id, for ``run_protocol(..., resume=...)``.

    The earlier result must be for the same protocol definition, method, image size and device type;
    anything else is a one-line ``ReconError`` (mixing them would make the means meaningless).
    """
    if previous.get("format") != FORMAT:
        raise ReconError(f"cannot resume: the earlier result is not {FORMAT}")
    checks = (
        ("protocol", previous.get("protocol"), _finite(protocol.definition())),
        ("method", (previous.get("method") or {}).get("name"), method.name),
        ("size_scale", (previous.get("overrides") or {}).get("size_scale"), protocol.overrides.size_scale),
        ("device", (previous.get("machine") or {}).get("device", "").split(":")[0], device.type),
    )
    for what, was, now in checks:
        if json.loads(json.dumps(was)) != json.loads(json.dumps(now)):
            name = was.get("name") if isinstance(was, dict) else was
            raise ReconError(f"cannot resume: the earlier result has a different {what} ({name})")
    items = previous.get("items", [])
    weights = getattr(method, "weights_sha256", None)  # model methods: the same name, other weights
    if weights is not None:
        other = {(it.get("info") or {}).get("sha256") for it in items} - {weights}
        if other:
            raise ReconError(f"cannot resume: the earlier result used other weights (sha256 {min(map(str, other))[:12]}...)")
        gain = getattr(method, "scale_gain", 1.0)  # the same weights with another inference calibration
        gains = {float((it.get("info") or {}).get("scale_gain", 1.0)) for it in items} - {float(gain)}
        if gains:
            raise ReconError(f"cannot resume: the earlier result used another scale_gain ({min(gains)})")
        carve = getattr(method, "carve_votes", 0)  # ... or another silhouette carving (results before it: none)
        carves = {int((it.get("info") or {}).get("carve_votes", 0)) for it in items} - {int(carve)}
        if carves:
            raise ReconError(f"cannot resume: the earlier result used another carve_votes ({min(carves)})")
    return {it["id"]: it for it in items}


def run_protocol(
    protocol: EvalProtocol,
    method: Method,
    out_json: Path | None = None,  # results JSON (written atomically, after every item), or None
    out_grid: Path | None = None,  # GT | prediction | error PNG, or None
    limit: int | None = None,  # evaluate only the first N items (recorded as an override)
    device: str | torch.device = "cpu",
    progress: Callable[[str], None] | None = None,  # called with one line per item
    resume: dict | None = None,  # an earlier (possibly interrupted) result: its items are kept, not re-run
) -> dict:
    """Evaluate ``method`` on every item of ``protocol``; return the results dict (module docstring).

    With ``out_json`` the file is rewritten after every item (``"complete": false`` until the last),
    so an interrupted run loses at most one item and can go on with ``resume=`` that file's dict.
    """
    device = resolve_device(device)
    limit = min([v for v in (limit, protocol.overrides.limit) if v is not None], default=None)
    if limit is not None and limit >= protocol.num_items():
        limit = None  # a limit that covers every item is the full protocol
    overrides = ProtocolOverrides(limit=limit, size_scale=protocol.overrides.size_scale)
    oracle = bool(getattr(method, "uses_ground_truth_depth", False))
    previous = {} if resume is None else reusable_items(resume, protocol, method, device)
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    t_total = time.perf_counter()
    items, grid_rows, reused = [], [], 0

    def result(complete: bool) -> dict:
        return _finite({
            "format": FORMAT,
            "protocol": protocol.definition(),
            "method": {"name": method.name, "oracle": oracle},
            "full_protocol": not overrides.active,
            "complete": complete,
            "overrides": overrides.as_dict(),
            "items": items,
            "means": summarize(items),
            "resumed_items": reused,
            "machine": machine_info(device),
            "started_utc": started,
            "seconds_total": time.perf_counter() - t_total,
        })

    for index, (item_id, inputs, targets, extras) in enumerate(protocol.items(overrides.limit, frozenset(previous))):
        if item_id in previous:
            items.append(previous[item_id])
            reused += 1
            if progress is not None:
                progress(f"{protocol.name} [{index + 1}] {item_id}: kept from the earlier run")
            continue
        if oracle:
            if extras.get("oracle_inputs") is None:
                raise ReconError(f"method {method.name} needs ground-truth input depth, which protocol {protocol.name} does not have")
            inputs = extras["oracle_inputs"]
        # the grid shows the first items this run evaluates (kept items have no images to show)
        rows = grid_rows if (len(items) - reused < GRID_ITEMS and out_grid is not None) else None
        item = evaluate_item(protocol, method, item_id, inputs, targets, extras, device, rows)
        items.append(item)
        if out_json is not None:
            write_json(Path(out_json), result(complete=False))
        if progress is not None:
            shown = ", ".join(f"{k} {v:.4g}" for k, v in item["mean"].items() if v is not None and k in ("psnr", "ssim"))
            progress(f"{protocol.name} [{index + 1}] {item_id}: {shown}, {item['seconds_wall']:.1f} s")
    if not items:
        raise ReconError(f"protocol {protocol.name} yielded no items")

    final = result(complete=True)
    if out_json is not None:
        write_json(Path(out_json), final)
    if out_grid is not None and grid_rows:
        write_grid(Path(out_grid), grid_rows[:GRID_MAX_ROWS])
    return final


def evaluate_item(protocol: EvalProtocol, method: Method, item_id: str, inputs, targets, extras: dict,
                  device: torch.device, grid_rows: list[GridRow] | None = None) -> dict:
    """Reconstruct one item, render and score its targets; return its result row (module docstring).

    ``grid_rows``: when given, a ``GridRow`` per target view is appended to it.
    """
    settings = protocol.metrics
    inputs = inputs.to(device)
    t0 = time.perf_counter()
    rec = method.reconstruct(inputs)
    seconds_wall = time.perf_counter() - t0
    pose = None
    if getattr(method, "unposed", False):
        rec, pose = align_unposed(rec, inputs)
    gaussians = rec.gaussians.detach().to(device)

    t0 = time.perf_counter()
    views = []
    for v in range(len(targets)):
        with torch.no_grad():
            out = render(gaussians, targets.cameras[[v]].to(device), background=protocol.background)
        pred, gt = out.rgb[0].float().cpu(), targets.images[v].float().cpu()
        row = {"name": targets.names[v], "psnr": psnr(pred, gt),
               "ssim": ssim(pred, gt, settings.ssim_window, settings.ssim_padding)}
        if settings.psnr_foreground and targets.masks is not None:
            row["psnr_fg"] = psnr(pred, gt, targets.masks[v].cpu())
        if settings.depth and targets.depth_z is not None:
            row.update(depth_errors(out.depth[0].cpu(), out.alpha[0].cpu(), targets.depth_z[v].cpu(),
                                    settings.depth_alpha_min))
        views.append(row)
        if grid_rows is not None:
            grid_rows.append(GridRow(f"{item_id} / {targets.names[v]}   PSNR {row['psnr']:.2f}", gt, pred))
    seconds_render = time.perf_counter() - t0

    mesh = None
    if settings.mesh and rec.mesh is not None and "gt_mesh" in extras:
        seed = int(extras.get("seed", 0)) % (2**31)
        gt_mesh = extras["gt_mesh"]()
        if len(gt_mesh.faces) > 0:  # an empty ground truth has no scale to score against: no mesh row
            mesh = mesh_metrics(rec.mesh, gt_mesh, settings.mesh_samples, settings.fscore_tau_rel, seed=seed)
    item_mean = mean_metrics(views)
    if pose is not None:
        item_mean.update(pose)
    return {
        "id": item_id,
        "seconds_wall": seconds_wall,
        "seconds_method": float(rec.seconds),
        "seconds_render": seconds_render,
        "gaussians": len(rec.gaussians),
        "views": views,
        "mean": item_mean,
        "mesh": mesh,
        "info": rec.info,
    }


def summarize(items: list[dict]) -> dict:
    """The result's ``means``: per-item means averaged, mesh metrics over items with a mesh, timings."""
    if not items:
        return {"items": 0}
    means = mean_metrics([it["mean"] for it in items])
    mesh_rows = [it["mesh"] for it in items if it["mesh"] is not None]
    if mesh_rows:
        means.update({f"mesh_{k}": v for k, v in mean_metrics(mesh_rows).items()})
        means["mesh_items"] = len(mesh_rows)
    means.update(mean_metrics([{k: it[k] for k in ("seconds_wall", "seconds_method", "seconds_render")} for it in items]))
    means["items"] = len(items)
    return means


def write_json(path: Path, data: dict) -> Path:
    """Write ``data`` as indented JSON, atomically (complete file or none)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=1, allow_nan=False)
    with atomic_output(path) as f:
        f.write(text.encode("utf-8") + b"\n")
    return path
