"""The ``recon`` console script (``app.cli:main``): recon's commands plus ``recon app``, which lives in
the app package so that recon never imports app."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import app.cli
from recon.cli import COMMANDS

REPO = Path(__file__).resolve().parents[2]


def test_console_script_is_app_cli():
    scripts = (REPO / "pyproject.toml").read_text().split("[project.scripts]", 1)[1].split("\n[", 1)[0]
    assert scripts.split() == ["recon", "=", '"app.cli:main"'], scripts


def test_app_command_passes_its_flags_to_launch(monkeypatch, tmp_path):
    import app.main

    calls = []
    monkeypatch.setattr(app.main, "launch", lambda *args, **kwargs: calls.append((args, kwargs)))
    rc = app.cli.main(["app", "--host", "0.0.0.0", "--port", "7999", "--checkpoint", str(tmp_path), "--device", "cpu"])
    assert rc == 0 and calls == [(("0.0.0.0", 7999, tmp_path), {"device": "cpu"})]


def test_console_script_loads_gradio_only_for_the_app():
    """Every ``recon`` command goes through app.cli; only ``recon app`` may pay for importing gradio."""
    code = "import sys, app.cli; print('gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO).stdout
    assert out.strip() == "False"


def test_app_bad_port_is_one_line_exit_2(capsys):
    assert app.cli.main(["app", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--port" in err, err


def test_console_help_lists_recon_commands_and_app(capsys):
    assert app.cli.main([]) == 2  # no command: the usage, as recon does
    out = capsys.readouterr().out
    assert all(c.name in out for c in COMMANDS) and "    app " in out, out


def test_python_m_app_serves_with_the_app_flags():
    proc = subprocess.run([sys.executable, "-m", "app", "--help"], capture_output=True, text=True, cwd=REPO,
                          check=False, timeout=120)
    assert proc.returncode == 0 and "usage: recon app" in proc.stdout and "--port" in proc.stdout, proc.stderr


def test_the_app_removes_its_work_folder_when_stopped_by_sigterm(monkeypatch, tmp_path):
    """A server stopped by SIGTERM (or Ctrl-C) leaves no temp folder behind; a folder the caller gave
    (``AppConfig.work_root``) is the caller's and stays."""
    import signal

    import app.main
    from app.callbacks import AppConfig

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # mkdtemp lands here
    config = AppConfig()
    session = config.root() / "session_x"
    session.mkdir()
    (session / "upload.png").write_bytes(b"x" * 100)

    class Demo:  # stands in for the Gradio page: serving ends with a SIGTERM
        closed = False

        def launch(self, **kwargs):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler interrupts this

        def close(self):
            Demo.closed = True

    monkeypatch.setattr(app.main, "load_reconstructor", lambda opts: None)
    monkeypatch.setattr(app.main, "build_app", lambda reconstructor, config: Demo())
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as e:
        app.main.launch(config=config)
    assert e.value.code == 128 + signal.SIGTERM and Demo.closed
    assert list(tmp_path.iterdir()) == [] and signal.getsignal(signal.SIGTERM) == before

    given = AppConfig(work_root=tmp_path / "mine")
    given.root()
    given.cleanup()
    assert (tmp_path / "mine").is_dir()
