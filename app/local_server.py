"""Driving a local ``recon app`` from the browser test and the app benchmark: a free loopback port,
waiting until the server answers, and the headless Chromium settings (Debian's package, no browser
download; background networking off, so nothing leaves the machine)."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_serving(url: str, proc: subprocess.Popen, timeout: float = 180.0) -> float:
    """Seconds until ``url`` answers 200; ``RuntimeError`` if ``proc`` exits first, ``TimeoutError``
    after ``timeout`` seconds."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"recon app exited with {proc.returncode} before serving")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return time.perf_counter() - t0
        except OSError:
            time.sleep(0.25)
    raise TimeoutError(f"recon app did not answer at {url} within {timeout:.0f} s")


def network_runs_logged(log: Path) -> int:
    """Network runs a server has logged so far (``recon app: network run N of session ...`` lines)."""
    return sum("recon app: network run" in line for line in log.read_text().splitlines())
