"""How a run shows its progress: the periodic evaluation of the EMA model, and ``loss.png``.

The evaluation is a quick proxy of the ``synthetic-val`` protocol (``recon.eval``): target-view PSNR
on the first few held-out procedural objects, 4 inputs and 4 targets at 256x256 over white.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from recon.core.types import Item
from recon.data.dataset import TRAIN_SEED_LIMIT
from recon.data.procedural.item import make_item
from recon.eval.metrics import psnr
from recon.inference import Reconstructor
from recon.models import ReconModel
from recon.train.batch import WHITE
from recon.train.run_log import read_log
from renderer import render


def eval_items(n: int) -> list[Item]:
    """The first ``n`` held-out objects (4 input and 4 target views, 256x256): seeds from
    ``TRAIN_SEED_LIMIT`` up, which no training item uses (the synthetic-val protocol's first objects)."""
    return [make_item(TRAIN_SEED_LIMIT + i, 4, 4, 256) for i in range(n)]


def eval_psnr(model: ReconModel, items: list[Item], device: torch.device, amp: bool) -> float:
    """Mean target-view PSNR (dB, over white) of ``model`` reconstructing each item from its inputs
    (bf16 when ``amp``). Leaves ``model`` in eval mode."""
    rec = Reconstructor(model, device=device, dtype=torch.bfloat16 if amp else torch.float32)
    vals = []
    for it in items:
        r = rec.reconstruct(it.inputs)
        img = render(r.gaussians.to(device), it.targets.cameras.to(device),
                     background=torch.tensor(WHITE, device=device)).rgb
        vals.append(psnr(img.cpu(), it.targets.images))
    model.train(False)
    return sum(vals) / len(vals)


def plot_loss(log_path: Path, png_path: Path) -> None:
    """``png_path`` (written atomically) from ``log_path``: training loss and target PSNR of the posed
    steps, and the eval PSNR. Nothing happens without the log or without matplotlib."""
    if not log_path.exists():
        return
    try:
        import matplotlib  # reason: plots only; slow to import and optional

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # reason: as above, and only after the backend is chosen
    except ImportError:
        return
    recs = read_log(log_path)
    tr = [r for r in recs if "loss" in r and not r.get("unposed")]
    ev = [r for r in recs if "eval_psnr" in r]
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    ax[0].plot([r["step"] for r in tr], [r["loss"] for r in tr], lw=0.8)
    ax[0].set_yscale("log")
    ax[0].set_xlabel("step")
    ax[0].set_title("training loss (posed steps)")
    ax[1].plot([r["step"] for r in tr], [r.get("psnr_target", float("nan")) for r in tr], lw=0.6, label="train targets")
    if ev:
        ax[1].plot([r["step"] for r in ev], [r["eval_psnr"] for r in ev], "o-", label="synthetic-val (EMA)")
    ax[1].set_xlabel("step")
    ax[1].set_ylabel("PSNR dB")
    ax[1].legend()
    fig.tight_layout()
    tmp = png_path.with_name(f".{png_path.name}.tmp{os.getpid()}.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, png_path)
