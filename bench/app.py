"""Web app benchmark: ``recon app`` with the shipped checkpoint, driven by headless Chromium.

    python -m bench.app [--checkpoint checkpoints/default] [--repeats 3] [--no-mesh]
                        [--screenshots docs/] [--json bench/results/app_cpu.json]

Starts ``recon app`` as a subprocess on a free loopback port and drives Debian's Chromium
(``/usr/bin/chromium``, through Playwright, as ``tests/app/test_browser.py`` does) with the posed
example ``assets/examples/toy_posed`` (4 photos + cameras.json). Measured in the browser, from the
Reconstruct click: the first 3D view (the Gaussian viewer has its file and the downloads are
listed) and the turntable and camera plot; each repeat is a fresh browser context (a new session).
Then, once, the mesh section: export with the default settings (20000 faces, 1024 texture; the
surface is extracted here) and a re-export with 2000 faces (GLB shown, then GLB + OBJ zip). Then two
sessions click Reconstruct at the same moment; both must finish (the app runs reconstructions one
at a time, the other waits in the queue). Server-side times come from each run's report.json and
the server's log (one line per network run). ``--screenshots DIR`` also writes ``app_idle.png``,
``app_result.png`` (first repeat, before the mesh export) and ``app_error.png`` (a fresh session
uploading a corrupt photo) there: the README's pictures. Run it on an idle machine:
other processes on two cores slow torch and the software-rendered WebGL down several times.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from app.local_server import (
    CHROMIUM,
    CHROMIUM_ARGS,
    free_port,
    network_runs_logged,
    wait_until_serving,
)

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "assets" / "examples" / "toy_posed"
VIEWPORT = {"width": 1400, "height": 1000}
POLL_S = 0.1
TIMEOUT_S = 600.0



def _open(browser, url: str):
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("#reconstruct", timeout=120_000)
    return context, page


def _upload(page) -> None:
    page.locator("#photos input[type=file]").set_input_files(sorted(str(p) for p in EXAMPLE.glob("*.png")))
    page.locator("#camera_file input[type=file]").set_input_files(str(EXAMPLE / "cameras.json"))
    page.locator("#thumbs img").first.wait_for(timeout=120_000)


def _outputs(page) -> tuple[bool, bool]:
    """(3D view shown with its downloads, turntable and camera plot shown)."""
    shown_3d = page.locator("#viewer canvas").count() > 0 and page.locator("#downloads a").count() > 0
    views = page.locator("#turntable video").count() > 0 and page.locator("#camera_plot img").count() > 0
    return shown_3d, views


def _reconstruct(pages: list) -> list[dict]:
    """Click Reconstruct on every page (DOM click events, back to back), then poll until each shows
    its 3D view and its turntable + plot. Times in seconds from each page's own click."""
    clicks = []
    for page in pages:
        page.locator("#reconstruct").dispatch_event("click")
        clicks.append(time.perf_counter())
    runs = [{"click_offset_s": round(c - clicks[0], 3), "click_to_3d_s": None, "click_to_views_s": None} for c in clicks]
    while time.perf_counter() - clicks[0] < TIMEOUT_S and any(r["click_to_views_s"] is None for r in runs):
        for page, t0, run in zip(pages, clicks, runs, strict=True):
            if run["click_to_views_s"] is not None:
                continue
            shown_3d, views = _outputs(page)
            now = time.perf_counter() - t0
            if shown_3d and run["click_to_3d_s"] is None:
                run["click_to_3d_s"] = round(now, 2)
            if views:
                run["click_to_views_s"] = round(now, 2)
        time.sleep(POLL_S)
    for page, run in zip(pages, runs, strict=True):
        run["finished"] = run["click_to_views_s"] is not None
        if run["finished"]:
            report = _report(page)
            run["server_seconds_to_3d"] = report["app"]["seconds_to_3d"]
            run["server_seconds_views"] = report["app"].get("seconds_views")
            run["gaussians"] = report["gaussians"]
    return runs


def _report(page) -> dict:
    """The run's report.json, fetched through its download link as the browser would."""
    for a in page.locator("#downloads a").all():
        href = a.get_attribute("href") or ""
        if href.endswith("/report.json"):
            return json.loads(page.request.get(href).body())
    raise SystemExit("no report.json among the downloads")


def _mesh(page, log: Path) -> dict:
    """Export with the default settings, then re-export with 2000 faces; seconds from each click."""
    import re

    runs_before = network_runs_logged(log)
    page.locator("#mesh_section button.label-wrap").dispatch_event("click")
    out = {}
    for key, faces in (("default_20000_faces", None), ("reexport_2000_faces", 2000)):
        if faces is not None:
            box = page.locator("#mesh_faces input[type=number]")
            box.wait_for(state="visible", timeout=120_000)
            box.evaluate("(e, v) => { e.value = v; for (const t of ['input', 'change', 'blur']) e.dispatchEvent(new Event(t, {bubbles: true})); }", str(faces))
            page.wait_for_function("n => document.querySelector('#mesh_faces input[type=range]').value == n",
                                   arg=str(faces))
        t0 = time.perf_counter()
        page.locator("#export_mesh").dispatch_event("click")
        shown = f"Mesh with {faces} faces" if faces else "Mesh with"
        note = page.locator("#mesh_note").get_by_text(re.compile(f"{shown}.*: GLB|Error"))
        note.wait_for(timeout=TIMEOUT_S * 1000)
        if "Error" in note.inner_text():
            raise SystemExit(f"mesh export failed in the page: {page.locator('.toast-body').all_inner_texts()}")
        glb = time.perf_counter() - t0
        page.locator("#mesh_note").get_by_text(re.compile(f"{shown}.*OBJ zip (in|from)")).wait_for(
            timeout=TIMEOUT_S * 1000)
        out[key] = {"click_to_glb_s": round(glb, 2), "click_to_glb_and_obj_s": round(time.perf_counter() - t0, 2),
                    "note": page.locator("#mesh_note").inner_text().strip()}
    out["network_runs_during_mesh_exports"] = network_runs_logged(log) - runs_before
    return out


def _shot(page, path: Path) -> None:
    from renderer.io.atomic import atomic_output

    data = page.screenshot(full_page=True, timeout=120_000, animations="disabled")
    with atomic_output(path) as f:
        f.write(data)


def _error_shot(browser, url: str, tmp: Path, path: Path) -> None:
    """A fresh session that uploads a corrupt photo: the page's one-line error."""
    context, page = _open(browser, url)
    bad = tmp / "corrupt.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(64))
    page.locator("#photos input[type=file]").set_input_files([str(bad)])
    page.get_by_text("not a JPEG, PNG, WebP or TIFF image").first.wait_for(timeout=120_000)
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(2000)  # the error toast fades in (a script transition, not CSS)
    _shot(page, path)
    context.close()


def _summary(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return round(statistics.median(values), 2) if values else None


def run(checkpoint: Path, repeats: int, mesh: bool, screenshots: Path | None, tmp: Path) -> dict:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise SystemExit(f"Chromium not found at {CHROMIUM} (bash scripts/setup.sh --dev installs it)")
    port, log = free_port(), tmp / "server.log"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONPATH": str(REPO)}
    load_start = os.getloadavg()
    with log.open("w") as f:
        proc = subprocess.Popen([sys.executable, "-m", "app", "--host", "127.0.0.1", "--port", str(port),
                                 "--checkpoint", str(checkpoint), "--device", "cpu"], cwd=REPO, stdout=f,
                                stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    result: dict = {}
    try:
        result["server_start_s"] = round(wait_until_serving(url, proc), 2)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            result["chromium"] = browser.version
            single = []
            for i in range(repeats):
                context, page = _open(browser, url)
                if i == 0 and screenshots:
                    _shot(page, screenshots / "app_idle.png")
                _upload(page)
                (r,) = _reconstruct([page])
                if not r["finished"]:
                    raise SystemExit(f"repeat {i}: the reconstruction did not finish within {TIMEOUT_S:.0f} s")
                single.append(r)
                print(f"single session, repeat {i}: 3D view {r['click_to_3d_s']} s, turntable and plot "
                      f"{r['click_to_views_s']} s after the click", flush=True)
                if i == 0 and screenshots:
                    _shot(page, screenshots / "app_result.png")
                if i == 0 and mesh:
                    result["mesh"] = _mesh(page, log)
                    print(f"mesh: {json.dumps(result['mesh'])}", flush=True)
                context.close()
                if i == 0 and screenshots:
                    _error_shot(browser, url, tmp, screenshots / "app_error.png")
            result["single"] = {"repeats": repeats, "click_to_3d_s_median": _summary(single, "click_to_3d_s"),
                                "click_to_views_s_median": _summary(single, "click_to_views_s"), "runs": single}

            sessions = [_open(browser, url) for _ in range(2)]
            for _, page in sessions:
                _upload(page)
            runs_before = network_runs_logged(log)
            both = _reconstruct([page for _, page in sessions])
            result["concurrent"] = {"sessions": 2, "both_finished": all(r["finished"] for r in both),
                                    "network_runs_logged": network_runs_logged(log) - runs_before, "runs": both}
            print(f"two sessions at once: {json.dumps(both)}", flush=True)
            for context, _ in sessions:
                context.close()
            browser.close()
        result["server_still_up"] = proc.poll() is None
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    result["loadavg_start_end"] = [list(load_start), list(os.getloadavg())]
    return result


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.app", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", type=Path, default=REPO / "checkpoints" / "default")
    p.add_argument("--repeats", type=int, default=3, help="single-session runs, each in a fresh browser context")
    p.add_argument("--no-mesh", dest="mesh", action="store_false", help="skip the mesh export timings")
    p.add_argument("--screenshots", type=Path, default=None, help="also write app_{idle,result,error}.png here")
    p.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "app_cpu.json")
    a = p.parse_args(argv)
    if a.repeats < 1:
        p.error("--repeats must be at least 1")
    if not (a.checkpoint / "config.json").is_file():
        p.error(f"no checkpoint at {a.checkpoint} (a folder with config.json and the weights)")
    if a.screenshots is not None:
        a.screenshots.mkdir(parents=True, exist_ok=True)
    import gradio
    import torch

    from renderer.io.atomic import atomic_output

    with tempfile.TemporaryDirectory(prefix="recon_bench_app_") as d:
        measured = run(a.checkpoint, a.repeats, a.mesh, a.screenshots, Path(d))
    result = {
        "input": "assets/examples/toy_posed: 4 photos + cameras.json (posed), uploaded through the page",
        "checkpoint": str(a.checkpoint),
        "timing": "browser wall clock from the Reconstruct click (DOM event), outputs polled every "
                  f"{POLL_S} s; server_* from report.json",
        **measured,
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
                    "torch": torch.__version__, "gradio": gradio.__version__,
                    "omp_num_threads": os.environ.get("OMP_NUM_THREADS")},
    }
    a.json.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(a.json) as f:
        f.write(json.dumps(result, indent=1).encode())
    print(json.dumps({k: result[k] for k in ("single", "concurrent") if k in result}, indent=1))


if __name__ == "__main__":
    main()
