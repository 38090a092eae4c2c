"""Named evaluation protocols, each fixed in code, and the generated docs/protocols.md table.

========================  =====================================================================
``lego-sparse-4``         lego, train views r_26 r_86 r_2 r_55 -> 8 test views, 400 px, white
``lego-sparse-8``         lego, those + r_75 r_93 r_16 r_73 -> the same 8 test views
``lego-sparse``           alias: both lego protocols
``fox-sparse``            instant-ngp fox, 8 photos -> 10 held-out, 540x960 undistorted, black
``synthetic-val``         200 procedural objects (seeds 10,000,000 + i), 4 -> 4 views, 256 px
``synthetic-val-scenes``  50 procedural scenes (seeds 10,500,000 + i), 4 -> 4 views, 256 px
``dtu-3``, ``dtu-6``      DTU scans 24 and 37, 3 or 6 views -> 6 held out, 400x300, masked PSNR
``dtu``                   alias: both DTU protocols
``llff-3``                LLFF horns, room, flower, 3 views -> every 8th held out, ~500x375
========================  =====================================================================

Definitions live in ``recon.eval.protocols_real``, ``protocols_captures`` and ``protocols_synthetic`` (their
docstrings say everything a result depends on); ``protocols_markdown()`` renders them into
docs/protocols.md, so the docs are regenerated, never edited by hand::

    python -m recon.eval.protocols   # rewrites docs/protocols.md
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

from recon.core.errors import ReconError
from recon.eval.protocol_base import EvalProtocol, ProtocolOverrides
from recon.eval.protocols_captures import DTU_INPUTS_3, DTU_INPUTS_6, DtuSparse, LlffSparse
from recon.eval.protocols_real import (
    LEGO_INPUTS_4,
    LEGO_INPUTS_8,
    FoxSparse,
    LegoSparse,
)
from recon.eval.protocols_synthetic import SyntheticVal
from renderer.io.atomic import atomic_output

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "eval_data"
DOCS_PATH = REPO_ROOT / "docs" / "protocols.md"

_Factory = Callable[[Path | None, ProtocolOverrides | None], EvalProtocol]

PROTOCOLS: dict[str, _Factory] = {
    "lego-sparse-4": lambda data, ov: LegoSparse("lego-sparse-4", LEGO_INPUTS_4, data, ov),
    "lego-sparse-8": lambda data, ov: LegoSparse("lego-sparse-8", LEGO_INPUTS_8, data, ov),
    "fox-sparse": lambda data, ov: FoxSparse(data, ov),
    "dtu-3": lambda data, ov: DtuSparse("dtu-3", DTU_INPUTS_3, data, ov),
    "dtu-6": lambda data, ov: DtuSparse("dtu-6", DTU_INPUTS_6, data, ov),
    "llff-3": lambda data, ov: LlffSparse(data, ov),
    "synthetic-val": lambda data, ov: SyntheticVal(False, data, ov),
    "synthetic-val-scenes": lambda data, ov: SyntheticVal(True, data, ov),
}
ALIASES: dict[str, tuple[str, ...]] = {"lego-sparse": ("lego-sparse-4", "lego-sparse-8"), "dtu": ("dtu-3", "dtu-6")}


def protocol_names() -> list[str]:
    """Every accepted name: the protocols, then the aliases."""
    return [*PROTOCOLS, *ALIASES]


def get_protocols(
    name: str,  # a protocol name or an alias (``lego-sparse`` = both lego protocols)
    data_dir: Path | None = None,  # eval data folder, default ../shared/eval_data next to the repo
    overrides: ProtocolOverrides | None = None,
) -> list[EvalProtocol]:
    """The protocols ``name`` stands for (one, or several for an alias).

    Raises a one-line ``ReconError`` listing the known names for an unknown one.
    """
    names = ALIASES.get(name, (name,))
    unknown = [n for n in names if n not in PROTOCOLS]
    if unknown:
        raise ReconError(f"unknown protocol {name!r}; known protocols: {', '.join(protocol_names())}")
    data_dir = DEFAULT_DATA_DIR if data_dir is None else Path(data_dir)
    return [PROTOCOLS[n](data_dir, overrides) for n in names]


def get_protocol(name: str, data_dir: Path | None = None, overrides: ProtocolOverrides | None = None) -> EvalProtocol:
    """One protocol by its exact name (aliases that stand for several are refused)."""
    found = get_protocols(name, data_dir, overrides)
    if len(found) != 1:
        raise ReconError(f"{name!r} names {len(found)} protocols ({', '.join(p.name for p in found)}); pick one")
    return found[0]


# ---- docs -------------------------------------------------------------------------------------


def _cell(value) -> str:
    if isinstance(value, (list, tuple)):
        value = " ".join(str(v) for v in value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def _metric_summary(p: EvalProtocol) -> str:
    m = p.metrics
    parts = ["PSNR", f"SSIM (kornia, window {m.ssim_window}, {m.ssim_padding})"]
    if m.psnr_foreground:
        parts.append("PSNR on target mask")
    if m.depth:
        parts.append(f"depth abs-rel/RMSE (alpha > {m.depth_alpha_min}) + coverage")
    if m.mesh:
        parts.append(f"Chamfer-L1, F-score@{m.fscore_tau_rel:g} x GT diagonal ({m.mesh_samples} samples) if a mesh is given")
    return "; ".join(parts)


def protocols_markdown() -> str:
    """docs/protocols.md, generated from the protocol classes (definitions and docstrings)."""
    protocols = [PROTOCOLS[n](None, None) for n in PROTOCOLS]
    aliases = ", ".join(f"`{a}` = " + " + ".join(f"`{n}`" for n in ns) for a, ns in ALIASES.items())
    lines = [
        "# Evaluation protocols",
        "",
        "Generated by `python -m recon.eval.protocols` from `recon/eval/protocols*.py`; do not edit by hand.",
        f"Run one with `recon eval PROTOCOL --method NAME [--json FILE] [--grid FILE]`. Aliases: {aliases}.",
        "",
        "| protocol | data | inputs | targets | size (WxH) | background | masks to method | metrics |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in protocols:
        d = p.definition()
        sizes = d["size"].values() if isinstance(d["size"], dict) else [d["size"]]
        size = ", ".join(dict.fromkeys(f"{w}x{h}" for w, h in sizes))
        bg = {(1.0, 1.0, 1.0): "white", (0.0, 0.0, 0.0): "black"}.get(tuple(p.background), str(p.background))
        lines.append(
            f"| `{p.name}` | {_cell(d['data'])} | {_cell(d['inputs'])} | {_cell(d['targets'])} | {size} | {bg} | "
            f"{'yes' if d['masks_to_method'] else 'no'} | {_metric_summary(p)} |"
        )
    lines += [
        "",
        "Means are over items (each item's mean over its target views first). Results with `--limit` or",
        "other overrides record them under `overrides` and `full_protocol: false` in the JSON (a limit",
        "that covers every item is no override). The JSON is rewritten after every item (`complete: false`",
        "until the last); `--resume` keeps the items already in `--json` from an interrupted or shorter",
        "run of the same protocol, method, size and device, and evaluates only the rest (`resumed_items`).",
        "",
    ]
    seen = set()
    for p in protocols:
        cls = type(p)
        if cls in seen:
            continue
        seen.add(cls)
        names = ", ".join(f"`{q.name}`" for q in protocols if type(q) is cls)
        lines += [f"## {names}", "", inspect.cleandoc(cls.__doc__ or ""), ""]
        extra = {k: v for k, v in p.definition().items() if k in ("preprocessing", "view_selection", "seeds", "gt_mesh")}
        for key, value in extra.items():
            lines.append(f"- {key}: {_cell(value)}")
        if extra:
            lines.append("")
    return "\n".join(lines)


def write_protocols_markdown(path: Path = DOCS_PATH) -> Path:
    """Write ``protocols_markdown()`` to ``path`` (atomically) and return the path."""

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as f:
        f.write(protocols_markdown().encode("utf-8"))
    return path


def main() -> None:
    print(f"wrote {write_protocols_markdown()}")


if __name__ == "__main__":
    main()
