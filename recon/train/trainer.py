"""``recon train CONFIG``: the training loop of ReconModel on procedural (or real) items, on CPU, one
GPU, or DDP.

Every step is a pure function of (config, step, rank) and the state at that step: which items, how
many input views, posed or unposed (``recon.train.config.step_plan``). Together with the saved
model, EMA and optimizer state this makes a resumed run (same world size, device and thread count)
take bit-identical next steps on CPU; on CUDA the data and state are the same, but kernels that
accumulate with atomics (gsplat's backward) make the steps equal only up to rounding. State is
saved atomically every ``save_every_minutes``, at the end, and on SIGTERM/SIGINT.

Distributed (``recon.train.distributed``): under ``torchrun`` every rank draws different items; all
ranks draw the same posed/unposed flag and view count. Whether to stop (signal, time limit) is
agreed by all ranks after every step, so no rank is left waiting in a collective. Rank 0 alone
saves, logs and evaluates.

The loop lives here; its parts live beside it: the data (``datasets``), a micro-batch and its loss
(``batch``), the training state and resume (``state_io``, ``run_log``), the periodic evaluation and
``loss.png`` (``evaluation``).

Outputs in ``out_dir``: ``checkpoints/step_*/`` (training state), ``log.jsonl`` (one JSON line per
logged step or eval), ``loss.png``, and ``export/`` (the EMA weights as a shippable checkpoint folder).
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from recon.core.errors import ReconError
from recon.core.types import Item
from recon.inference import Reconstructor
from recon.models import ReconModel
from recon.models.checkpoint import write_checkpoint
from recon.train.batch import batch_loss, make_batch
from recon.train.config import StepPlan, TrainConfig, cosine_lr, step_plan
from recon.train.datasets import plan_items, training_dataset
from recon.train.distributed import ProcessGroup
from recon.train.evaluation import eval_items, eval_psnr, plot_loss
from recon.train.run_log import append_log, truncate_log
from recon.train.state_io import (
    latest_step,
    load_state,
    load_training_tensors,
    save_state,
    training_tensors,
)

__all__ = ["Trainer", "train"]


class Trainer:
    """Model, EMA, AdamW and the loop. ``Trainer(cfg)`` builds everything (and joins the process
    group under ``torchrun``); ``resume()`` loads ``out_dir``'s latest state; ``fit()`` trains.

    ``dataset`` replaces the one ``cfg.data`` describes: any map-style dataset of ``Item``s with at
    least ``max(cfg.data.n_inputs)`` input views per item (e.g. ``recon.data.dataset.PosedImagesDataset``),
    deterministic per index and identical on every rank; ``cfg.data.length`` still limits it.
    """

    def __init__(self, cfg: TrainConfig, device: str | torch.device | None = None, dataset=None):
        self.cfg = cfg
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        self.group = ProcessGroup.join(device)
        torch.manual_seed(cfg.seed)  # before the models: their initial weights come from it
        self.model_cfg = cfg.model_config()
        self.model = ReconModel(self.model_cfg).to(self.device)
        self.ema = ReconModel(self.model_cfg).to(self.device)
        self.ema.load_state_dict(self.model.state_dict())
        self.ema.requires_grad_(False)
        self.ddp = self.group.wrap(self.model)
        self.opt = _adamw(self.model, cfg)
        self.step = 0
        self.samples_seen = 0
        self.train_seconds = 0.0
        self.out = Path(cfg.out_dir)
        self.dataset = training_dataset(cfg.data, self.device, dataset)
        self._stop = False
        self.stop_signal: int | None = None  # the signal that stopped the last ``fit``, if one did
        self._eval_items: list[Item] | None = None

    @property
    def world(self) -> int:
        return self.group.world

    @property
    def rank(self) -> int:
        return self.group.rank

    @property
    def device(self) -> torch.device:
        return self.group.device

    # ---- one step ---------------------------------------------------------------------------------

    def _step_plan(self, step: int) -> StepPlan:
        """This rank's plan for ``step`` (``recon.train.config.step_plan``)."""
        return step_plan(self.cfg, step, self.rank, self.world, len(self.dataset))

    def _items(self, plan: StepPlan) -> list[Item]:
        return plan_items(self.dataset, plan)

    def train_step(self) -> dict:
        """One optimizer step (``grad_accum`` micro-batches, gradients averaged over ranks), then
        the EMA update. Returns this rank's log record (step after it, loss and its parts, lr,
        grad norm, unposed, views); ``fit`` logs ``loss`` averaged over ranks."""
        c = self.cfg
        plan = self._step_plan(self.step)
        lr = cosine_lr(self.step, c.steps, c.warmup, c.lr)
        for grp in self.opt.param_groups:
            grp["lr"] = lr
        self.model.train()
        self.opt.zero_grad(set_to_none=True)
        items = self._items(plan)
        total, logs = self._backward(items, plan.unposed)
        gn = torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip)
        self.opt.step()
        self._update_ema()
        self.step += 1
        self.samples_seen += len(items) * self.world
        return {"step": self.step, "loss": total, "lr": lr, "grad_norm": float(gn), "unposed": plan.unposed,
                "views": plan.n_inputs, **logs}

    def _backward(self, items: list[Item], unposed: bool) -> tuple[float, dict[str, float]]:
        """Gradients of the loss over ``items`` in ``grad_accum`` micro-batches, each weighted by its
        share of the items. Returns the loss and its logged parts, averaged the same way."""
        c = self.cfg
        net = self.ddp or self.model
        micro = max(1, c.grad_accum)
        per = -(-len(items) // micro)
        chunks = [ch for ch in (items[m * per: (m + 1) * per] for m in range(micro)) if ch]
        logs: dict[str, float] = {}
        total = 0.0
        for m, chunk in enumerate(chunks):
            # DDP all-reduces on the last micro-batch only (every rank has the same number of chunks).
            sync = self.ddp is None or m == len(chunks) - 1
            with contextlib.nullcontext() if sync else self.ddp.no_sync():
                batch = make_batch(chunk, self.device)
                loss, lg = batch_loss(net, batch, unposed, c.loss, c.amp, c.render_views, c.render_size,
                                      c.render_backend)
                (loss * len(chunk) / len(items)).backward()
            total += float(loss.detach()) * len(chunk) / len(items)
            for k, v in lg.items():
                logs[k] = logs.get(k, 0.0) + v * len(chunk) / len(items)
        return total, logs

    @torch.no_grad()
    def _update_ema(self) -> None:
        """EMA toward the model; the decay ramps up from 0.1 so that early weights fade fast."""
        d = min(self.cfg.ema_decay, (1 + self.step) / (10 + self.step))
        for pe, pm in zip(self.ema.parameters(), self.model.parameters()):
            pe.lerp_(pm, 1 - d)

    # ---- state ------------------------------------------------------------------------------------

    def state_tensors(self) -> tuple[dict, dict]:
        """Everything a resume needs: ``model.*``, ``ema.*`` and ``opt.*`` tensors, and JSON metadata."""
        t, ometa = training_tensors(self.model, self.ema, self.opt)
        meta = {"step": self.step, "samples_seen": self.samples_seen, "train_seconds": self.train_seconds,
                "optimizer": ometa, "config": dataclasses.asdict(self.cfg), "world_size": self.world}
        return t, meta

    def save(self) -> None:
        """Rank 0: training state (atomic), the EMA export, and loss.png."""
        if self.rank != 0:
            return
        t, meta = self.state_tensors()
        save_state(self.out / "checkpoints", self.step, t, meta)
        self.export(self.out / "export")
        plot_loss(self.out / "log.jsonl", self.out / "loss.png")

    def resume(self) -> bool:
        """Load ``out_dir``'s latest state (every rank reads it); False when there is none. Log
        records written after that state (by a run killed before its next save) are dropped."""
        st = load_state(self.out / "checkpoints")
        if st is None:
            return False
        t, meta = st
        load_training_tensors(self.model, self.ema, self.opt, t, meta["optimizer"])
        self.step, self.samples_seen = int(meta["step"]), int(meta["samples_seen"])
        self.train_seconds = float(meta.get("train_seconds", 0.0))
        if int(meta.get("world_size", self.world)) != self.world and self.rank == 0:
            print(f"warning: resuming a {meta['world_size']}-process run with {self.world} processes: "
                  "the data order changes from here on", file=sys.stderr)
        if self.rank == 0:
            truncate_log(self.out / "log.jsonl", self.step)
        return True

    def init_weights(self, directory: str | Path) -> None:
        """Start model and EMA from a checkpoint folder's weights (sha256 and keys checked by
        ``Reconstructor.from_pretrained``); its model config must equal this run's, except for
        ``output_scale``, which no parameter depends on (a run may go on at another output scale)."""
        src = Reconstructor.from_pretrained(directory, device="cpu")
        if ({**src.model.cfg.to_dict(), "output_scale": None} != {**self.model_cfg.to_dict(), "output_scale": None}):
            raise ReconError(f"init_from {directory}: its model config differs from the training config's")
        state = src.model.state_dict()
        self.model.load_state_dict(state)
        self.ema.load_state_dict(state)

    def export(self, directory: Path) -> Path:
        """Write the EMA weights as a checkpoint folder (config.json with sha256, model.safetensors)."""
        return write_checkpoint(directory, self.model_cfg, self.ema.state_dict(), {"training": {
            "step": self.step, "samples_seen": self.samples_seen, "train_seconds": round(self.train_seconds, 1),
            "world_size": self.world, "device": str(self.device), "config": dataclasses.asdict(self.cfg)}})

    def _log(self, rec: dict) -> None:
        if self.rank == 0:
            append_log(self.out / "log.jsonl", rec)

    def evaluate(self) -> dict:
        """Target-view PSNR of the EMA model on the first ``eval_items`` synthetic-val objects (4 inputs, 256x256)."""
        if self._eval_items is None:
            self._eval_items = eval_items(self.cfg.eval_items)
        value = eval_psnr(self.ema, self._eval_items, self.device, self.cfg.amp)
        return {"step": self.step, "eval_psnr": value, "eval_items": len(self._eval_items)}

    # ---- loop -------------------------------------------------------------------------------------

    def _on_signal(self, signum, frame) -> None:
        if self._stop and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: give up without saving
        self._stop = True
        self.stop_signal = int(signum)
        if self.rank == 0:
            print(f"{signal.Signals(signum).name}: saving after this step (Ctrl-C again to abort)", file=sys.stderr)

    def fit(self, max_steps: int | None = None) -> None:
        """Train until ``cfg.steps`` (or ``max_steps`` more steps, or the time limit, or SIGTERM/SIGINT),
        then save. Signal handlers are installed only when called from the main thread."""
        c = self.cfg
        self._stop = False
        self.stop_signal = None
        start = time.time()
        last_save = time.time()
        stop_at = min(self.step + max_steps if max_steps is not None else c.steps, c.steps)
        with _stop_signals(self._on_signal):
            while self.step < stop_at:
                t0 = time.time()
                rec = self.train_step()
                dt = time.time() - t0
                self.train_seconds += dt
                out_of_time = bool(c.time_limit_minutes) and time.time() - start > c.time_limit_minutes * 60
                stop, rec["loss"] = self.group.agree(self._stop or out_of_time, rec["loss"])
                if self.step % c.log_every == 0 or self.step == 1:
                    rec.update(seconds=round(dt, 3), samples_seen=self.samples_seen,
                               train_seconds=round(self.train_seconds, 1))
                    self._log(rec)
                if c.eval_every and self.step % c.eval_every == 0 and self.rank == 0:
                    self._log(self.evaluate())
                if time.time() - last_save > c.save_every_minutes * 60:
                    self.save()
                    last_save = time.time()
                if stop:
                    break
            self.save()

    def close(self) -> None:
        """Leave the process group this trainer joined (if any)."""
        self.group.close()


def _adamw(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with ``cfg.weight_decay`` on matrices and none on vectors (norms, biases, embeddings'
    scalars), as usual for transformers."""
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        (no_decay if p.ndim < 2 else decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95))


@contextlib.contextmanager
def _stop_signals(handler: Callable) -> Iterator[None]:
    """``handler`` on SIGTERM and SIGINT inside the block, the previous handlers after it. Only the
    main thread may install handlers; elsewhere this does nothing."""
    old = {}
    if threading.current_thread() is threading.main_thread():
        old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def train(config_path: str | Path, resume: bool = True, max_steps: int | None = None,
          out_dir: str | None = None, time_limit_minutes: float | None = None) -> Trainer:
    """Train from a JSON config (``TrainConfig``): resume from ``out_dir``'s latest state unless
    ``resume`` is False (then ``out_dir`` must hold no state), run ``max_steps`` more steps (default:
    to ``steps``) or until ``time_limit_minutes`` (default: the config's), save, return the trainer."""
    cfg = TrainConfig.load(config_path)
    if out_dir is not None:
        cfg.out_dir = str(out_dir)
    if time_limit_minutes is not None:
        cfg.time_limit_minutes = float(time_limit_minutes)
    if not resume:
        step = latest_step(Path(cfg.out_dir) / "checkpoints")
        if step is not None:
            raise ReconError(f"{cfg.out_dir} already holds training state (step {step}); resume it, "
                             "or train into another out dir")
    tr = Trainer(cfg)
    try:
        resumed = tr.resume() if resume else False
        if not resumed and cfg.init_from:
            tr.init_weights(cfg.init_from)
        tr.fit(max_steps)
    finally:
        tr.close()
    return tr
