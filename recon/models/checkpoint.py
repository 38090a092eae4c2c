"""The checkpoint format, read and written in one place.

A checkpoint folder holds ``config.json``::

    {"model": ModelConfig dict, "weights": {"file": "model.safetensors", "sha256": hex},
     "inference": {"scale_gain": float, ...} (optional), "training": {...} (optional)}

the weights as safetensors (never a pickle) and a MODEL_CARD.md. Reading checks the weights'
sha256 against config.json and compares parameter names and shapes strictly; writing is atomic
(temporary names, then renames), weights first, config last.

``DEFAULT_CHECKPOINT`` is the shipped ``checkpoints/default`` beside the package, wherever the
command runs from.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from recon.core.errors import ReconError
from recon.models.model import ModelConfig, ReconModel

WEIGHTS_NAME = "model.safetensors"
DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[2] / "checkpoints" / "default"


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def key_report(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """Readable lines for every missing, unexpected or mis-shaped parameter (empty when they match)."""
    own = model.state_dict()
    lines = [f"missing: {k} {tuple(v.shape)}" for k, v in own.items() if k not in state]
    lines += [f"unexpected: {k} {tuple(v.shape)}" for k, v in state.items() if k not in own]
    lines += [f"shape: {k} checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
              for k, v in own.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
    return lines


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model (float32 weights, train mode as built), its folder, the
    weights' sha256 and the config's ``inference`` settings (e.g. ``scale_gain``)."""

    model: ReconModel
    directory: Path
    sha256: str
    inference: dict = field(default_factory=dict)

    @property
    def config_path(self) -> Path:
        return self.directory / "config.json"


def read_checkpoint(directory: str | Path) -> Checkpoint:
    """Load a checkpoint folder; every defect is a one-line ``ReconError`` naming the file."""
    d = Path(directory)
    cfg_path = d / "config.json"
    if not cfg_path.is_file():
        raise ReconError(f"{d}: not a checkpoint folder (no config.json)")
    try:
        cfg = json.loads(cfg_path.read_text())
        model_cfg = ModelConfig.from_dict(cfg["model"])
        wfile, want = cfg["weights"]["file"], cfg["weights"]["sha256"]
    except (ValueError, KeyError, TypeError) as e:
        raise ReconError(f"{cfg_path}: malformed checkpoint config ({e})") from None
    wpath = d / wfile
    if not wpath.is_file():
        raise ReconError(f"{d}: weights file {wfile} is missing")
    got = sha256_file(wpath)
    if got != want:
        raise ReconError(f"{wpath}: sha256 {got[:12]}... does not match config.json ({want[:12]}...)")
    state = load_file(str(wpath))
    model = ReconModel(model_cfg)
    problems = key_report(model, state)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; ... {len(problems) - 5} more" if len(problems) > 5 else "")
        raise ReconError(f"{wpath}: weights do not fit the config: {shown}")
    model.load_state_dict({k: v.float() for k, v in state.items()})
    inference = cfg.get("inference", {})
    if not isinstance(inference, dict):
        raise ReconError(f"{cfg_path}: malformed checkpoint config (inference must be an object)")
    return Checkpoint(model, d, got, inference)


def write_checkpoint(directory: str | Path, model_cfg: ModelConfig, state: dict[str, torch.Tensor],
                     extra: dict | None = None) -> Path:
    """Write ``state`` (float32 copies) and ``config.json`` (``model_cfg``, the weights' sha256 and
    the ``extra`` top-level keys, e.g. ``training``) into ``directory``; returns the folder."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / f".{WEIGHTS_NAME}.tmp{os.getpid()}"
    save_file({k: v.detach().float().contiguous().cpu() for k, v in state.items()}, str(tmp))
    digest = sha256_file(tmp)
    os.replace(tmp, d / WEIGHTS_NAME)
    cfg = {"model": model_cfg.to_dict(), "weights": {"file": WEIGHTS_NAME, "sha256": digest}, **(extra or {})}
    tmpj = d / f".config.json.tmp{os.getpid()}"
    tmpj.write_text(json.dumps(cfg, indent=1))
    os.replace(tmpj, d / "config.json")
    return d
