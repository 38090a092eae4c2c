"""The model's protocol table next to the baselines, for MODEL_CARD.md and the closing note.

    python -m bench.model_table --checkpoint checkpoints/default [--synthetic-limit 50] [--force]

Runs ``recon`` (posed) and ``recon-unposed`` under the protocols, writing
``bench/results/model/<protocol>__<method>.json`` (after every item; items already there are kept and
only the rest run, so a larger ``--synthetic-limit`` adds items and ``--force`` starts afresh), then
prints a markdown table that puts each model row beside the baselines of ``bench/results/baselines``
on the same items. Where the model and a baseline ran on different numbers of the first seeds, the
table also reports the longer run's mean over exactly the shorter run's seeds ("same items" rows).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from recon.eval.command import EvalRequest, run_eval

RESULTS = Path("bench/results/model")
BASELINES = Path("bench/results/baselines")
RUNS = (
    ("synthetic-val", "recon"),
    ("synthetic-val", "recon-unposed"),
    ("synthetic-val-scenes", "recon"),
    ("lego-sparse-4", "recon"),
    ("lego-sparse-8", "recon"),
    ("fox-sparse", "recon"),
    ("dtu-3", "recon"),
    ("dtu-6", "recon"),
    ("llff-3", "recon"),
)
SYNTHETIC = ("synthetic-val", "synthetic-val-scenes")


def run_all(checkpoint: Path, synthetic_limit: int | None, force: bool) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    for protocol, method in RUNS:
        out = RESULTS / f"{protocol}__{method}.json"
        limit = synthetic_limit if protocol in SYNTHETIC else None
        print(f"== {protocol} / {method} (limit {limit})", flush=True)
        run_eval(EvalRequest(protocol, method, json_path=out, grid_path=out.with_suffix(".png"), limit=limit,
                             device="cpu", checkpoint=checkpoint, resume=not force), progress=lambda line: print("  " + line, flush=True))


def _same_seeds(a: dict, b: dict, n: int) -> bool:
    return [it["id"] for it in a["items"][:n]] == [it["id"] for it in b["items"][:n]]


def _mean_over(result: dict, key: str, n: int | None) -> float | None:
    items = result["items"][:n] if n else result["items"]
    vals = [it["mean"].get(key) for it in items]
    vals = [v for v in vals if isinstance(v, (int, float))]
    return sum(vals) / len(vals) if vals else None


def _item_seconds(result: dict, n: int) -> float | None:
    vals = [it["seconds_method"] for it in result["items"][:n] if isinstance(it.get("seconds_method"), (int, float))]
    return sum(vals) / len(vals) if vals else None


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def _budget_note(result: dict) -> str:
    """For a wall-clock-budget method: the median optimisation steps per item and the machine's load
    average when the run ended (a loaded machine buys fewer steps, so a lower score)."""
    steps = sorted(it["info"]["iterations"] for it in result["items"] if "iterations" in it.get("info", {}))
    if not steps:
        return ""
    note = f"median {steps[len(steps) // 2]} optimisation steps per item"
    load = result.get("machine", {}).get("load_avg_1_5_15_min")
    return note + ("" if load is None else f" (load average {load[0]:.1f} at the end)")


def table() -> str:
    fmt = lambda v, d=2: "-" if v is None else f"{v:.{d}f}"
    lines = ["| protocol | method | items | PSNR | SSIM | s / item (method) | other |", "|---|---|---|---|---|---|---|"]
    for protocol in dict.fromkeys(protocol for protocol, _ in RUNS):
        base = {m: _load(BASELINES / f"{protocol}__{m}.json") for m in ("plane-sweep", "optimize-30s", "optimize-120s")}
        n_base = min((b["means"]["items"] for b in base.values() if b), default=None)
        for method in ("recon", "recon-unposed"):
            r = _load(RESULTS / f"{protocol}__{method}.json")
            if r is None:
                continue
            m = r["means"]
            other = []
            if m.get("psnr_fg") is not None:
                other.append(f"PSNR inside the target masks {m['psnr_fg']:.2f}")
            mesh_s = [it["info"].get("seconds_mesh") for it in r["items"] if it["info"].get("seconds_mesh")]
            if mesh_s:
                other.append(f"SDF mesh extraction {sum(mesh_s) / len(mesh_s):.2f} s / item")
            if m.get("mesh_chamfer_l1") is not None:
                other.append(f"SDF mesh Chamfer-L1 {m['mesh_chamfer_l1']:.4f}, F-score {m.get('mesh_fscore', 0):.3f}")
            if m.get("pose_rot_deg") is not None:
                # the errors count every camera, and an unsolved one is the identity: say how many were solved
                solved = [it["info"].get("pose_solved") for it in r["items"]]
                solved = [s[1:] for s in solved if isinstance(s, list)]
                tally = f" ({sum(map(sum, solved))} of {sum(map(len, solved))} non-reference cameras solved)" if solved else ""
                other.append(f"camera rotation error {m['pose_rot_deg']:.2f} deg, translation error "
                             f"{m['pose_trans_err']:.3f}{tally}")
                if m.get("pose_acc15") is not None:
                    solved_err = m.get("pose_rot_deg_solved")
                    other.append(f"{100 * m['pose_acc15']:.0f}% of them within 15 deg"
                                 + ("" if solved_err is None else f"; solved ones' rotation error {solved_err:.2f} deg"))
            partial = "" if r["full_protocol"] else " (first seeds)"
            lines.append(f"| {protocol}{partial} | **{method}** | {m['items']} | {fmt(m.get('psnr'))} | "
                         f"{fmt(m.get('ssim'), 3)} | {fmt(m.get('seconds_method'))} | {'; '.join(other)} |")
            if n_base and n_base < m["items"] and method == "recon" and all(
                    _same_seeds(r, b, n_base) for b in base.values() if b):
                lines.append(f"| {protocol} (first {n_base}) | **{method}**, same items as baselines | {n_base} | "
                             f"{fmt(_mean_over(r, 'psnr', n_base))} | {fmt(_mean_over(r, 'ssim', n_base), 3)} | "
                             f"{fmt(_item_seconds(r, n_base))} | |")
        model = _load(RESULTS / f"{protocol}__recon.json")
        for name, b in base.items():
            if b is None:
                continue
            bm = b["means"]
            partial = "" if b["full_protocol"] else " (first seeds)"
            lines.append(f"| {protocol}{partial} | {name} | {bm['items']} | {fmt(bm.get('psnr'))} | "
                         f"{fmt(bm.get('ssim'), 3)} | {fmt(bm.get('seconds_method'))} | {_budget_note(b)} |")
            n = model["means"]["items"] if model else None
            if n and n < bm["items"] and _same_seeds(model, b, n):
                lines.append(f"| {protocol} (first {n}) | {name}, same items as recon | {n} | "
                             f"{fmt(_mean_over(b, 'psnr', n))} | {fmt(_mean_over(b, 'ssim', n), 3)} | "
                             f"{fmt(_item_seconds(b, n))} | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.model_table", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", type=Path, default=Path("checkpoints/default"))
    p.add_argument("--synthetic-limit", type=int, default=50)
    p.add_argument("--force", action="store_true")
    p.add_argument("--table-only", action="store_true")
    a = p.parse_args(argv)
    if not a.table_only:
        run_all(a.checkpoint, a.synthetic_limit, a.force)
    print(table())


if __name__ == "__main__":
    main()
