"""``recon train CONFIG``: trains ReconModel on procedural (or real) items, on CPU, one GPU, or DDP.

Every step is a pure function of (config, step, rank) and the state at that step: which items, how
many input views, posed or unposed (``recon.train.config.step_plan``). Together with the saved
model, EMA and optimizer state this makes a resumed run (same world size, device and thread count)
take bit-identical next steps on CPU; on CUDA the data and state are the same, but kernels that
accumulate with atomics (gsplat's backward) make the steps equal only up to rounding. State is saved atomically every ``save_every_minutes``, at the end,
and on SIGTERM/SIGINT (``recon.train.state_io``).

Distributed: under ``torchrun`` (``WORLD_SIZE > 1``) the trainer joins the process group (gloo on
CPU, NCCL on CUDA) and wraps the model in DDP with ``find_unused_parameters=True``, because the
heads a step runs differ (unposed steps run the pointmap head only; the triplane head runs only on
ranks whose items have SDF samples). Every rank draws different items; all ranks draw the same
posed/unposed flag and view count. Whether to stop (signal, time limit) is agreed by all ranks
after every step, so no rank is left waiting in a collective. Rank 0 alone saves, logs and evaluates.

Outputs in ``out_dir``: ``checkpoints/step_*/`` (training state), ``log.jsonl`` (one JSON line per
logged step or eval), ``loss.png``, and ``export/`` (the EMA weights as a shippable checkpoint folder).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import torch
import torch.distributed as dist

from recon.data.types import Item
from recon.errors import ReconError
from recon.models import ReconModel
from recon.train.batch import WHITE, batch_loss, make_batch
from recon.train.config import DataConfig, StepPlan, TrainConfig, cosine_lr, step_plan
from recon.train.state_io import (
    latest_step,
    load_optimizer,
    load_state,
    optimizer_tensors,
    save_state,
)
from renderer import render

__all__ = ["DataConfig", "TrainConfig", "Trainer", "cosine_lr", "train"]


class _FirstN(torch.utils.data.Dataset):
    """The first ``n`` items of a dataset (``set_epoch`` passes through)."""

    def __init__(self, base, n: int):
        self.base, self.n = base, min(n, len(base))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Item:
        if not 0 <= i < self.n:
            raise IndexError(i)
        return self.base[i]

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.base, "set_epoch"):
            self.base.set_epoch(epoch)


class Trainer:
    """Model, EMA, AdamW and the loop. ``Trainer(cfg)`` builds everything (and joins the process
    group under ``torchrun``); ``resume()`` loads ``out_dir``'s latest state; ``fit()`` trains.

    ``dataset`` replaces the one ``cfg.data`` describes: any map-style dataset of ``Item``s with at
    least ``max(cfg.data.n_inputs)`` input views per item (e.g. ``recon.data.dataset.PosedImagesDataset``),
    deterministic per index and identical on every rank; ``cfg.data.length`` still limits it.
    """

    def __init__(self, cfg: TrainConfig, device: str | torch.device | None = None, dataset=None):
        self.cfg = cfg
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if device is None:
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if self.device.type == "cuda" and self.device.index is not None:
            torch.cuda.set_device(self.device)
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        self._own_group = False
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
            self._own_group = True
        torch.manual_seed(cfg.seed)
        self.model_cfg = cfg.model_config()
        self.model = ReconModel(self.model_cfg).to(self.device)
        self.ema = ReconModel(self.model_cfg).to(self.device)
        self.ema.load_state_dict(self.model.state_dict())
        self.ema.requires_grad_(False)
        self.ddp = None
        if self.world > 1:
            self.ddp = torch.nn.parallel.DistributedDataParallel(self.model, find_unused_parameters=True)
        decay, no_decay = [], []
        for n, p in self.model.named_parameters():
            (no_decay if p.ndim < 2 else decay).append(p)
        self.opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                      {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95))
        self.step = 0
        self.samples_seen = 0
        self.train_seconds = 0.0
        self.out = Path(cfg.out_dir)
        self.dataset = self._make_dataset() if dataset is None else dataset
        if dataset is not None and cfg.data.length is not None:
            self.dataset = _FirstN(dataset, cfg.data.length)
        self._stop = False
        self.stop_signal: int | None = None  # the signal that stopped the last ``fit``, if one did
        self._eval_items: list[Item] | None = None

    # ---- data -------------------------------------------------------------------------------------

    def _make_dataset(self):
        d = self.cfg.data
        if d.cache:
            from recon.data.cache import CachedDataset, CachedSplit

            ds = CachedDataset(d.cache, CachedSplit(max(d.n_inputs), d.n_targets, d.sdf_samples))
            return _FirstN(ds, d.length) if d.length is not None else ds
        from recon.data.dataset import ProceduralConfig, ProceduralDataset

        pc = ProceduralConfig(max(d.n_inputs), d.n_targets, d.size, sdf_samples=d.sdf_samples)
        if d.length is not None:
            pc.length = d.length
        return ProceduralDataset(pc, device=self.device if d.render_device == "train" else "cpu")

    def _step_plan(self, step: int) -> StepPlan:
        """This rank's plan for ``step`` (``recon.train.config.step_plan``)."""
        return step_plan(self.cfg, step, self.rank, self.world, len(self.dataset))

    def _items(self, plan: StepPlan) -> list[Item]:
        items = []
        for i, epoch in zip(plan.indices, plan.epochs):
            if hasattr(self.dataset, "set_epoch"):
                self.dataset.set_epoch(epoch)
            it = self.dataset[i]
            items.append(Item(it.inputs.select(list(range(plan.n_inputs))), it.targets, it.sdf, it.meta))
        return items

    # ---- one step ---------------------------------------------------------------------------------

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
        net = self.ddp or self.model
        self.opt.zero_grad(set_to_none=True)
        items = self._items(plan)
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
                loss, lg = batch_loss(net, batch, plan.unposed, c.loss, c.amp, c.render_views, c.render_size,
                                      c.render_backend)
                (loss * len(chunk) / len(items)).backward()
            total += float(loss.detach()) * len(chunk) / len(items)
            for k, v in lg.items():
                logs[k] = logs.get(k, 0.0) + v * len(chunk) / len(items)
        gn = torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip)
        self.opt.step()
        with torch.no_grad():
            d = min(c.ema_decay, (1 + self.step) / (10 + self.step))
            for pe, pm in zip(self.ema.parameters(), self.model.parameters()):
                pe.lerp_(pm, 1 - d)
        self.step += 1
        self.samples_seen += len(items) * self.world
        return {"step": self.step, "loss": total, "lr": lr, "grad_norm": float(gn), "unposed": plan.unposed,
                "views": plan.n_inputs, **logs}

    def _agree(self, stop: bool, loss: float) -> tuple[bool, float]:
        """All ranks' verdict: stop if any rank wants to, and the loss averaged over ranks."""
        if self.world == 1:
            return stop, loss
        t = torch.tensor([float(stop), loss], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return bool(t[0] > 0), float(t[1]) / self.world

    # ---- state ------------------------------------------------------------------------------------

    def state_tensors(self) -> tuple[dict, dict]:
        """Everything a resume needs: ``model.*``, ``ema.*`` and ``opt.*`` tensors, and JSON metadata."""
        t = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        t.update({f"ema.{k}": v for k, v in self.ema.state_dict().items()})
        ot, ometa = optimizer_tensors(self.opt)
        t.update(ot)
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
        self._plot()

    def init_weights(self, directory: str | Path) -> None:
        """Start model and EMA from a checkpoint folder's weights (sha256 and keys checked by
        ``Reconstructor.from_pretrained``); its model config must equal this run's, except for
        ``output_scale``, which no parameter depends on (a run may go on at another output scale)."""
        from recon.reconstructor import Reconstructor

        src = Reconstructor.from_pretrained(directory, device="cpu")
        if ({**src.model.cfg.to_dict(), "output_scale": None} != {**self.model_cfg.to_dict(), "output_scale": None}):
            raise ReconError(f"init_from {directory}: its model config differs from the training config's")
        state = src.model.state_dict()
        self.model.load_state_dict(state)
        self.ema.load_state_dict(state)

    def resume(self) -> bool:
        """Load ``out_dir``'s latest state (every rank reads it); False when there is none. Log
        records written after that state (by a run killed before its next save) are dropped."""
        st = load_state(self.out / "checkpoints")
        if st is None:
            return False
        t, meta = st
        self.model.load_state_dict({k[6:]: v for k, v in t.items() if k.startswith("model.")})
        self.ema.load_state_dict({k[4:]: v for k, v in t.items() if k.startswith("ema.")})
        load_optimizer(self.opt, {k: v for k, v in t.items() if k.startswith("opt.")}, meta["optimizer"])
        self.step, self.samples_seen = int(meta["step"]), int(meta["samples_seen"])
        self.train_seconds = float(meta.get("train_seconds", 0.0))
        if int(meta.get("world_size", self.world)) != self.world and self.rank == 0:
            print(f"warning: resuming a {meta['world_size']}-process run with {self.world} processes: "
                  "the data order changes from here on", file=sys.stderr)
        self._truncate_log()
        return True

    def _truncate_log(self) -> None:
        path = self.out / "log.jsonl"
        if self.rank != 0 or not path.exists():
            return
        lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
        keep = []
        for ln in lines:
            try:
                if int(json.loads(ln).get("step", 0)) <= self.step:
                    keep.append(ln)
            except (ValueError, AttributeError):
                continue  # a line cut short by a kill
        if len(keep) != len(lines):
            tmp = path.with_name(f".log.jsonl.tmp{os.getpid()}")
            tmp.write_text("".join(ln + "\n" for ln in keep))
            os.replace(tmp, path)

    def export(self, directory: Path) -> Path:
        """Write the EMA weights as a checkpoint folder (config.json with sha256, model.safetensors)."""
        from safetensors.torch import save_file

        from recon.reconstructor import WEIGHTS_NAME, sha256_file

        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".{WEIGHTS_NAME}.tmp{os.getpid()}"
        save_file({k: v.detach().float().contiguous().cpu() for k, v in self.ema.state_dict().items()}, str(tmp))
        digest = sha256_file(tmp)
        os.replace(tmp, directory / WEIGHTS_NAME)
        cfg = {"model": self.model_cfg.to_dict(), "weights": {"file": WEIGHTS_NAME, "sha256": digest},
               "training": {"step": self.step, "samples_seen": self.samples_seen,
                            "train_seconds": round(self.train_seconds, 1), "world_size": self.world,
                            "device": str(self.device), "config": dataclasses.asdict(self.cfg)}}
        tmpj = directory / f".config.json.tmp{os.getpid()}"
        tmpj.write_text(json.dumps(cfg, indent=1))
        os.replace(tmpj, directory / "config.json")
        return directory

    def _log(self, rec: dict) -> None:
        if self.rank != 0:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        with open(self.out / "log.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")

    def _plot(self) -> None:
        """loss.png from log.jsonl (training loss and target PSNR, eval PSNR)."""
        path = self.out / "log.jsonl"
        if not path.exists():
            return
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            return
        recs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
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
        tmp = self.out / f".loss.png.tmp{os.getpid()}.png"
        fig.savefig(tmp, dpi=90)
        plt.close(fig)
        os.replace(tmp, self.out / "loss.png")

    # ---- evaluation -------------------------------------------------------------------------------

    def evaluate(self) -> dict:
        """Target-view PSNR of the EMA model on the first ``eval_items`` synthetic-val objects (4 inputs, 256x256)."""
        from recon.data.procedural.item import make_item
        from recon.eval.metrics import psnr
        from recon.reconstructor import Reconstructor

        if self._eval_items is None:
            self._eval_items = [make_item(10_000_000 + i, 4, 4, 256) for i in range(self.cfg.eval_items)]
        rec = Reconstructor(self.ema, device=self.device, dtype=torch.bfloat16 if self.cfg.amp else torch.float32)
        vals = []
        for it in self._eval_items:
            r = rec.reconstruct(it.inputs)
            img = render(r.gaussians.to(self.device), it.targets.cameras.to(self.device),
                         background=torch.tensor(WHITE, device=self.device)).rgb
            vals.append(psnr(img.cpu(), it.targets.images))
        self.ema.train(False)
        return {"step": self.step, "eval_psnr": sum(vals) / len(vals), "eval_items": len(vals)}

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
        old = {}
        if threading.current_thread() is threading.main_thread():
            old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        start = time.time()
        last_save = time.time()
        stop_at = min(self.step + max_steps if max_steps is not None else c.steps, c.steps)
        try:
            while self.step < stop_at:
                t0 = time.time()
                rec = self.train_step()
                dt = time.time() - t0
                self.train_seconds += dt
                out_of_time = bool(c.time_limit_minutes) and time.time() - start > c.time_limit_minutes * 60
                stop, rec["loss"] = self._agree(self._stop or out_of_time, rec["loss"])
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
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def close(self) -> None:
        """Leave the process group this trainer joined (if any)."""
        if self._own_group and dist.is_initialized():
            dist.destroy_process_group()
            self._own_group = False


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
