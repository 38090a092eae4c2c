"""Training state without pickles: what a resume needs, and how it lies on disk.

What: ``model.*``, ``ema.*`` and ``opt.*`` tensors (``training_tensors``, restored by
``load_training_tensors``) plus JSON metadata (step counters, the optimizer's non-tensor state, the
config). How: tensors in safetensors, everything else in JSON.

Layout: ``DIR/step_NNNNNNNN/{state.safetensors,state.json}`` and ``DIR/latest`` (a text file naming
the newest step folder). ``save_state`` writes a complete step folder under a temporary name,
renames it, then moves the ``latest`` pointer (atomic rename), so a kill at any moment leaves a
loadable state; ``load_state`` falls back to the newest complete step folder if ``latest`` names
one that is missing.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from recon.core.errors import ReconError
from renderer.io.atomic import replace_dir

_TENSORS, _META = "state.safetensors", "state.json"


def optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Flatten ``opt.state_dict()`` into named tensors ``opt.<param id>.<key>`` (copies) and a
    JSON-able rest: ``{"param_groups": [...], "scalars": {"<param id>.<key>": value}}``."""
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"opt.{pid}.{k}"] = v.detach().clone().contiguous()
            else:
                scalars[f"{pid}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def load_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Inverse of ``optimizer_tensors``: load the state into ``opt`` (built over the same parameters)."""
    state: dict[int, dict] = {}
    for name, t in tensors.items():
        if name.startswith("opt."):
            _, pid, k = name.split(".", 2)
            state.setdefault(int(pid), {})[k] = t
    for key, v in meta["scalars"].items():
        pid, k = key.split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    groups = [{k: tuple(v) if k == "betas" else v for k, v in g.items()} for g in meta["param_groups"]]  # JSON lists
    opt.load_state_dict({"state": state, "param_groups": groups})


def training_tensors(model: torch.nn.Module, ema: torch.nn.Module,
                     opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """The tensors of a resume: ``model.<name>``, ``ema.<name>`` (state dicts) and ``opt.*``
    (``optimizer_tensors``); and the optimizer's JSON-able rest (for the metadata's ``"optimizer"``)."""
    t = {f"model.{k}": v for k, v in model.state_dict().items()}
    t.update({f"ema.{k}": v for k, v in ema.state_dict().items()})
    ot, ometa = optimizer_tensors(opt)
    t.update(ot)
    return t, ometa


def load_training_tensors(model: torch.nn.Module, ema: torch.nn.Module, opt: torch.optim.Optimizer,
                          tensors: dict[str, torch.Tensor], opt_meta: dict) -> None:
    """Inverse of ``training_tensors``: load them into ``model``, ``ema`` and ``opt`` (built as the
    saving run built them)."""
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
    load_optimizer(opt, {k: v for k, v in tensors.items() if k.startswith("opt.")}, opt_meta)


def _step_dirs(d: Path) -> list[Path]:
    """Complete step folders, oldest first."""
    return sorted(p for p in d.glob("step_*") if (p / _META).is_file() and (p / _TENSORS).is_file())


def save_state(directory: str | Path, step: int, tensors: dict[str, torch.Tensor], meta: dict, keep: int = 2) -> Path:
    """Write ``directory/step_NNNNNNNN/{state.safetensors,state.json}`` via a temporary folder, then
    point ``directory/latest`` at it and delete all step folders but this one and the ``keep - 1``
    newest before it (folders of later steps, left by an abandoned run, go too). Returns the folder."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    final = d / f"step_{step:08d}"
    tmp = d / f".tmp_step_{step:08d}_{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp / _TENSORS))
    (tmp / _META).write_text(json.dumps(meta, indent=1))
    # The same step may be saved twice (e.g. a signal right after the last save).
    replace_dir(tmp, final, d / f".old_{final.name}_{os.getpid()}")
    ptr = d / f".latest.tmp{os.getpid()}"
    ptr.write_text(final.name)
    os.replace(ptr, d / "latest")
    older = [p for p in _step_dirs(d) if p.name < final.name]
    doomed = older[: max(0, len(older) - (keep - 1))] + [p for p in d.glob("step_*") if p.name > final.name]
    doomed += [p for p in d.glob(".tmp_step_*") if p != tmp]  # left by killed saves
    for old in doomed:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_step(directory: str | Path) -> int | None:
    """The step of the state ``load_state`` would load, or None when there is none."""
    s = _latest_dir(Path(directory))
    return None if s is None else int(s.name.split("_")[1])


def _latest_dir(d: Path) -> Path | None:
    if (d / "latest").is_file():
        s = d / (d / "latest").read_text().strip()
        if (s / _META).is_file() and (s / _TENSORS).is_file():
            return s
    dirs = _step_dirs(d) if d.is_dir() else []
    return dirs[-1] if dirs else None


def load_state(directory: str | Path) -> tuple[dict[str, torch.Tensor], dict] | None:
    """The state ``directory/latest`` points at (CPU tensors, metadata), or None when there is none.
    An unreadable state raises ``ReconError``."""
    s = _latest_dir(Path(directory))
    if s is None:
        return None
    try:
        return load_file(str(s / _TENSORS)), json.loads((s / _META).read_text())
    except (SafetensorError, ValueError, OSError) as e:
        raise ReconError(f"{s}: unreadable training state ({e})") from None
