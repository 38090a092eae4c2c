"""``recon batch ROOT --out OUT``: every sub-folder of ROOT is one reconstruction job.

Guarantees:

- a job's outputs appear all at once: the job writes into ``OUT/.tmp-<name>-<pid>/`` and that folder
  is renamed to ``OUT/<name>/`` only after everything (``report.json`` last) is written, so a kill at
  any moment leaves either a complete job folder or a temporary one that the next run deletes;
- ``--resume`` skips jobs whose folder exists with a ``report.json``; without it, finished jobs
  are redone and replaced (the old folder stays until the new one is complete);
- a failing job is recorded in ``OUT/batch_report.json`` with its one-line error and the others go on;
  the exit code says whether any job failed;
- ``workers > 1`` runs jobs in separate processes (spawned, one torch thread each by default) that
  end with the batch process, even when it is killed with SIGKILL (Linux: a parent-death signal);
  ``engine="ray"`` runs the same job function as Ray tasks (``address=None`` starts a local instance).

The job itself is a function ``job_fn(job_dir: Path, out_tmp: Path, options: dict) -> dict`` that
returns its report; by default the reconstruction pipeline (``recon.pipeline.run.run_job``). It must be
a module-level function, so that spawned worker processes and Ray tasks can pickle it by reference.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import multiprocessing as mp
import os
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import torch

from recon.core.errors import ReconError
from recon.pipeline.run import check_job_options, run_job
from renderer.io.atomic import atomic_output, check_output_dir, make_output_dir, replace_dir

PR_SET_PDEATHSIG = 1  # linux/prctl.h
REPORT = "report.json"
BATCH_REPORT = "batch_report.json"


@dataclass
class BatchOptions:
    workers: int = 1
    resume: bool = False
    engine: str = "local"  # "local" | "ray"
    address: str | None = None  # Ray cluster address; None = start a local Ray instance
    threads_per_job: int = 0  # torch threads in worker processes (0 = cores / workers)
    job_options: dict = field(default_factory=dict)  # passed to the job function
    job_fn: Callable[[Path, Path, dict], dict] = run_job  # module-level, so workers can unpickle it


def list_jobs(root: Path) -> list[Path]:
    """Sub-folders of ``root`` (hidden ones skipped), sorted by name."""
    if not root.is_dir():
        raise ReconError(f"{root}: batch root is not a folder")
    jobs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not jobs:
        raise ReconError(f"{root}: no job sub-folders")
    return jobs


def is_finished(out: Path, name: str) -> bool:
    return (out / name / REPORT).is_file()


def die_with_parent(parent_pid: int) -> None:
    """Worker initializer: end this worker when the batch process dies, even by kill -9 (a worker
    left behind would go on holding a model in memory). Linux: the kernel sends SIGKILL on the
    parent's death (prctl PR_SET_PDEATHSIG); a parent that died before that is caught by its pid."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)


def run_one(job_dir: str, out_root: str, job_fn: Callable[[Path, Path, dict], dict], job_options: dict,
            threads: int) -> dict:
    """Run one job into a temporary folder and rename it into place; never raises for job errors.

    Returns ``{"job", "status": "ok" | "failed", "seconds", "error"?, "exit_code"?}``."""
    if threads > 0:
        torch.set_num_threads(threads)
    job, out = Path(job_dir), Path(out_root)
    tmp = out / f".tmp-{job.name}-{os.getpid()}"
    t0 = time.perf_counter()
    try:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        report = job_fn(job, tmp, dict(job_options))
        with atomic_output(tmp / REPORT) as f:
            f.write(json.dumps(report, indent=1).encode())
        replace_dir(tmp, out / job.name, out / f".old-{job.name}-{os.getpid()}")
        return {"job": job.name, "status": "ok", "seconds": time.perf_counter() - t0}
    except ReconError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        return {"job": job.name, "status": "failed", "seconds": time.perf_counter() - t0, "error": str(e), "exit_code": 2}
    except Exception as e:  # noqa: BLE001 - a job's internal error must not stop the batch
        shutil.rmtree(tmp, ignore_errors=True)
        last = traceback.format_exception_only(type(e), e)[-1].strip()
        return {"job": job.name, "status": "failed", "seconds": time.perf_counter() - t0, "error": last, "exit_code": 1}


def _clean_stale(out: Path) -> None:
    for p in out.glob(".tmp-*"):
        shutil.rmtree(p, ignore_errors=True)
    for p in out.glob(".old-*"):
        shutil.rmtree(p, ignore_errors=True)


def _write_report(out: Path, results: dict[str, dict], started: float) -> None:
    data = {"jobs": list(results.values()),
            "ok": sum(r["status"] == "ok" for r in results.values()),
            "failed": sum(r["status"] == "failed" for r in results.values()),
            "skipped": sum(r["status"] == "skipped" for r in results.values()),
            "seconds": time.perf_counter() - started}
    with atomic_output(out / BATCH_REPORT) as f:
        f.write(json.dumps(data, indent=1).encode())


def run_batch(root: Path, out: Path, opts: BatchOptions, progress: Callable[[dict, int, int], None] | None = None) -> dict:
    """Run every job of ``root`` into ``out``; returns the batch report (also written to OUT/batch_report.json)."""
    root, out = Path(root), Path(out)
    check_output_dir(out)
    if opts.engine not in ("local", "ray"):
        raise ReconError(f"batch engine must be local or ray, got {opts.engine!r}")
    if opts.workers < 1:
        raise ReconError(f"batch workers must be >= 1, got {opts.workers}")
    if opts.job_fn is run_job:
        check_job_options(opts.job_options)  # a bad option would fail every job: refuse it once, up front
    jobs = list_jobs(root)
    make_output_dir(out)
    _clean_stale(out)
    started = time.perf_counter()
    results: dict[str, dict] = {}
    todo = []
    for j in jobs:
        if opts.resume and is_finished(out, j.name):
            results[j.name] = {"job": j.name, "status": "skipped", "seconds": 0.0}
        else:
            todo.append(j)
    done = len(results)
    total = len(jobs)
    threads = opts.threads_per_job or max(1, (os.cpu_count() or 1) // opts.workers)
    args = lambda j: (str(j), str(out), opts.job_fn, opts.job_options, threads)

    def record(r: dict) -> None:
        nonlocal done
        results[r["job"]] = r
        done += 1
        _write_report(out, results, started)
        if progress is not None:
            progress(r, done, total)

    if opts.engine == "ray":
        for r in _run_ray(todo, args, opts):
            record(r)
    elif opts.workers == 1:
        for j in todo:
            record(run_one(*args(j)))
    else:
        with ProcessPoolExecutor(max_workers=opts.workers, mp_context=mp.get_context("spawn"),
                                 initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
            pending = {pool.submit(run_one, *args(j)) for j in todo}
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in finished:
                    record(f.result())
    _write_report(out, results, started)
    order = {j.name: i for i, j in enumerate(jobs)}
    report = json.loads((out / BATCH_REPORT).read_text())
    report["jobs"].sort(key=lambda r: order.get(r["job"], 0))
    return report


def _run_ray(todo: list[Path], args, opts: BatchOptions):
    try:
        import ray  # optional extra, only for --engine ray
    except ImportError:
        raise ReconError("the ray engine needs the ray package (pip install 'ray[default]')") from None
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage reports: batch runs offline
    started_here = not ray.is_initialized()
    if started_here:
        kw = {"address": opts.address} if opts.address else {"num_cpus": opts.workers, "include_dashboard": False}
        ray.init(log_to_driver=False, **kw)
    try:
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        task = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=0)(run_one)
        refs = [task.remote(*args(j)) for j in todo]
        while refs:
            ready, refs = ray.wait(refs, num_returns=1)
            yield ray.get(ready[0])
    finally:
        if started_here:
            ray.shutdown()
