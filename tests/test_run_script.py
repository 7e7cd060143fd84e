"""The README's first command (run.sh) as a newcomer meets it: the account step on a terminal and without one, and
a port that is already taken. The real script, on the embedded default (SQLite, filesystem broker), in a folder of
its own."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _embedded_env(var_dir: Path, port: int) -> dict:
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL", "SECRET_KEY")
    }
    env.update({"MAMMO_VAR_DIR": str(var_dir), "PORT": str(port), "HOST": "127.0.0.1", "PYTHONUNBUFFERED": "1"})
    return env


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


class Terminal:
    """run.sh with a pseudo-terminal as its standard input and output, as a person at a shell has."""

    def __init__(self, env: dict):
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen(
            ["bash", "run.sh"], cwd=REPO, env=env, stdin=slave, stdout=slave, stderr=slave, start_new_session=True
        )
        os.close(slave)
        self.output = ""

    def expect(self, text: str, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"{text!r} did not come; the terminal shows:\n{self.output[-3000:]}")
            ready, _, _ = select.select([self.master], [], [], 1)
            if ready:
                with contextlib.suppress(OSError):
                    self.output += os.read(self.master, 4096).decode(errors="replace")

    def type(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode())


@pytest.mark.slow
def test_on_a_terminal_the_first_start_asks_for_the_first_account(tmp_path):
    port = _free_port()
    terminal = Terminal(_embedded_env(tmp_path / "var", port))
    try:
        terminal.expect("Username:")
        terminal.type("alice")
        terminal.expect("Role [")
        terminal.type("radiologist")
        terminal.expect("Password:")
        terminal.type("a-long-first-passphrase-9")
        terminal.expect("Password (again):")
        terminal.type("a-long-first-passphrase-9")
        terminal.expect("Created alice with role Radiologist.")
        terminal.expect(f"http://127.0.0.1:{port}/")
        deadline = time.monotonic() + 120
        while not _answers(port):
            assert time.monotonic() < deadline, terminal.output[-2000:]
            time.sleep(1)
    finally:
        _stop(terminal.process)
        os.close(terminal.master)
    with sqlite3.connect(tmp_path / "var" / "db.sqlite3") as db:
        assert db.execute("SELECT username, role FROM accounts_user").fetchall() == [("alice", "radiologist")]


@pytest.mark.slow
def test_without_a_terminal_the_first_start_says_how_to_create_an_account(tmp_path):
    port = _free_port()
    process = subprocess.Popen(
        ["bash", "run.sh"], cwd=REPO, env=_embedded_env(tmp_path / "var", port), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    output = ""
    try:
        while f"http://127.0.0.1:{port}/" not in output:
            line = process.stdout.readline()
            assert line, f"run.sh ended early:\n{output[-3000:]}"
            output += line
    finally:
        _stop(process)
    assert "No accounts yet. Create one with" in output
    assert "manage.py adduser" in output and "Username:" not in output


@pytest.mark.slow
def test_a_port_in_use_is_reported_before_anything_starts(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        run = subprocess.run(
            ["bash", "run.sh"], cwd=REPO, env=_embedded_env(tmp_path / "var", port), stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert run.returncode == 1
    assert f"Port {port} on 127.0.0.1 is already in use" in run.stderr
    assert f"PORT={port + 1} bash run.sh" in run.stderr
    assert time.monotonic() - started < 10
    assert not (tmp_path / "var").exists()  # nothing installed, migrated or started


def test_the_embedded_broker_keeps_its_state_under_the_var_folder(tmp_path):
    """kombu's filesystem transport writes exchange tables to a 'control' folder, by default relative to wherever
    the process starts (once committed to the repository by accident): it belongs under the var folder."""
    var, cwd = tmp_path / "var", tmp_path / "elsewhere"
    cwd.mkdir()
    env = _embedded_env(var, _free_port())
    run = subprocess.run(
        [sys.executable, str(REPO / "manage.py"), "shell", "-c",
         "from mammo_platform.celery import app; app.control.ping(timeout=0.2)"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert list((var / "broker" / "control").glob("*.exchange"))
    assert not (cwd / "control").exists()
