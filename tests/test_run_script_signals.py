"""Stopping run.sh as people and supervisors do: Ctrl-C on the terminal it runs in (a pseudo-terminal that is the
script's controlling terminal, so the line discipline sends SIGINT to its foreground process group, as a shell's
would), SIGTERM to run.sh alone, and a worker killed outright, whose embedded beat must go with it. Nothing of the
platform may outlive run.sh: the web server, the worker and its beat, the DICOM listener (and its port). Also: the
terminal and the worker's log show the platform's lines without TensorFlow's start-up noise."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import termios
import time

import psutil
import pytest

from tests.test_run_script import REPO, _answers, _embedded_env, _free_port, _stop

STOPPED_WITHIN = 8  # seconds from the signal to the last process gone (run.sh gives its children 10 s at most)
TF_NOISE = ("All log messages before absl::InitializeLog() is called", "oneDNN custom operations are on")


def _take_terminal() -> None:
    # In the child, after start_new_session's setsid(): the pty on fd 0 becomes the session's controlling terminal,
    # and the new session's (run.sh's) process group its foreground group.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class ControllingTerminal:
    def __init__(self, env: dict):
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen(
            ["bash", "run.sh"], cwd=REPO, env=env, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
            preexec_fn=_take_terminal,
        )  # fmt: skip
        os.close(slave)
        self.output = ""

    def read(self, seconds: float = 0.5) -> None:
        ready, _, _ = select.select([self.master], [], [], seconds)
        if ready:
            with contextlib.suppress(OSError):
                self.output += os.read(self.master, 65536).decode(errors="replace")

    def expect(self, text: str, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"{text!r} did not come; the terminal shows:\n{self.output[-3000:]}")
            self.read(1)

    def type(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode())

    def ctrl_c(self) -> None:
        os.write(self.master, b"\x03")


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _port_free(port: int) -> bool:
    """Free for the next start: nothing listens on it (SO_REUSEADDR, as gunicorn and pynetdicom bind: connections
    of the run that ended may linger in TIME_WAIT)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _platform(run_sh: int) -> dict[str, list[int]]:
    """run.sh's descendants by what they are (the grep filters of TensorFlow's start-up lines left out)."""
    found: dict[str, list[int]] = {"web": [], "worker": [], "beat": [], "listener": []}
    for child in psutil.Process(run_sh).children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            command = " ".join(child.cmdline())
            if "gunicorn" in command:
                found["web"].append(child.pid)
            elif "dicom_listener" in command:
                found["listener"].append(child.pid)
            elif "celery" in command:
                parent = child.parent()
                is_beat = parent is not None and "celery" in " ".join(parent.cmdline())
                found["beat" if is_beat else "worker"].append(child.pid)
    return found


def _wait_for_everything(run_sh: int, web_port: int, dicom_port: int, output) -> dict[str, list[int]]:
    deadline = time.monotonic() + 180
    while True:
        found = _platform(run_sh)
        if _answers(web_port) and not _port_free(dicom_port) and all(found.values()):
            return found
        assert time.monotonic() < deadline, f"not everything started: {found}\n{output()[-3000:]}"
        time.sleep(0.5)


def _gone_within(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if _running(pid)]
        if not alive:
            return []
        time.sleep(0.1)
    return [pid for pid in pids if _running(pid)]


def _kill_leftovers(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_ctrl_c_stops_everything_and_a_killed_worker_takes_its_beat_along(tmp_path):
    web_port, dicom_port = _free_port(), _free_port()
    var = tmp_path / "var"
    env = {**_embedded_env(var, web_port), "DICOM_PORT": str(dicom_port)}
    terminal = ControllingTerminal(env)
    everything: list[int] = []
    try:
        terminal.expect("Username:")
        terminal.type("alice")
        terminal.expect("Role [")
        terminal.type("radiologist")
        terminal.expect("Password:")
        terminal.type("a-long-first-passphrase-9")
        terminal.expect("Password (again):")
        terminal.type("a-long-first-passphrase-9")
        terminal.expect(f"http://127.0.0.1:{web_port}/")
        found = _wait_for_everything(terminal.process.pid, web_port, dicom_port, lambda: terminal.output)
        everything = [pid for pids in found.values() for pid in pids]

        # A worker crash: its beat goes with it (no scheduler left beside the next worker's).
        [worker], [beat] = found["worker"], found["beat"]
        os.kill(worker, signal.SIGKILL)
        assert _gone_within([worker, beat], 5) == [], "the beat of a killed worker lived on"

        # Ctrl-C on the terminal: run.sh and every child stop within seconds; the ports are free again.
        started = time.monotonic()
        terminal.ctrl_c()
        while terminal.process.poll() is None and time.monotonic() - started < STOPPED_WITHIN:
            terminal.read(0.2)
        left = _gone_within(
            [terminal.process.pid, *everything], max(0.1, STOPPED_WITHIN - (time.monotonic() - started))
        )
        assert left == [], f"still running {time.monotonic() - started:.1f} s after Ctrl-C: {left}"
        assert terminal.process.poll() is not None
        assert _port_free(web_port), "the web port is still taken"
        assert _port_free(dicom_port), "the DICOM port is still taken"

        # What the person saw, and the worker's log: the platform's lines, not TensorFlow's start-up noise.
        terminal.read(0.2)
        assert "Registered the default model" in terminal.output and "Stopping..." in terminal.output
        log = (var / "log" / "worker.log").read_text()
        assert "ready." in log  # celery's own "celery@host ready."
        for noise in TF_NOISE:
            assert noise not in terminal.output, noise
            assert noise not in log, noise
    finally:
        _stop(terminal.process)
        _kill_leftovers(everything)
        os.close(terminal.master)


@pytest.mark.slow
def test_sigterm_to_run_sh_alone_stops_every_child(tmp_path):
    """A supervisor or a person's `kill PID` signals run.sh only, not its process group."""
    web_port, dicom_port = _free_port(), _free_port()
    env = {**_embedded_env(tmp_path / "var", web_port), "DICOM_PORT": str(dicom_port)}
    process = subprocess.Popen(
        ["bash", "run.sh"], cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    output = ""
    everything: list[int] = []
    try:
        while f"http://127.0.0.1:{web_port}/" not in output:
            line = process.stdout.readline()
            assert line, f"run.sh ended early:\n{output[-3000:]}"
            output += line
        found = _wait_for_everything(process.pid, web_port, dicom_port, lambda: output)
        everything = [pid for pids in found.values() for pid in pids]
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        left = _gone_within([process.pid, *everything], STOPPED_WITHIN)
        assert left == [], f"still running {time.monotonic() - started:.1f} s after SIGTERM: {left}"
        assert _port_free(web_port) and _port_free(dicom_port)
    finally:
        _stop(process)
        _kill_leftovers(everything)


def test_only_tensorflows_start_up_lines_are_filtered(tmp_path):
    """The filter run.sh puts on its own output and on the logs: TensorFlow's two start-up lines go; the platform's
    lines and TensorFlow's real warnings and errors stay."""
    lines = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796587585.079413   13571 port.cc:153] oneDNN custom operations are on. You may see slightly "
        "different numerical results due to floating-point round-off errors from different computation orders.",
        "Registered the default model as mini-mias-lite0-patch-v1.",
        "W0000 00:00:1796587585.079413   13571 op_kernel.cc:1857] OP_REQUIRES failed : RESOURCE_EXHAUSTED",
        "E0000 00:00:1796587585.079413   13571 port.cc:153] something real went wrong",
        "2026-12-06 20:05:39,663 WARNING cases.dicom.listener DICOM_ALLOWED_PEERS is empty",
    ]
    script = REPO / "run.sh"
    definitions = [
        line for line in script.read_text().splitlines() if line.startswith(("TF_STARTUP_LINES", "without_tf"))
    ]
    assert len(definitions) == 3, definitions
    run = subprocess.run(
        ["bash", "-c", "\n".join([*definitions, "without_tf_startup"])], input="\n".join(lines) + "\n",
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == lines[2:]


@pytest.mark.slow  # starts the listener as run.sh does and waits for it to stop (seconds)
def test_the_dicom_listener_started_as_run_sh_starts_it_stops_on_ctrl_c_and_sigterm(tmp_path):
    """What run.sh's listener gets on Ctrl-C: SIGINT from the terminal, then SIGTERM from run.sh. Started as a
    background job of a script (SIGINT ignored on entry, handlers of its own), it once waited on a threading.Event
    that its handlers never got to set, and kept its port until killed by hand."""
    env = _embedded_env(tmp_path / "var", _free_port())
    for attempt in range(5):
        port = _free_port()
        script = f'"{sys.executable}" manage.py dicom_listener --port {port} > "$LOG" 2>&1 & echo $!; wait'
        log = tmp_path / f"listener-{attempt}.log"
        shell = subprocess.Popen(
            ["bash", "-c", script], cwd=REPO, env={**env, "LOG": str(log)}, stdout=subprocess.PIPE, text=True,
            start_new_session=True,
        )  # fmt: skip
        listener = int(shell.stdout.readline())
        try:
            deadline = time.monotonic() + 60
            while f":{port}" not in (log.read_text() if log.exists() else ""):
                assert time.monotonic() < deadline and shell.poll() is None, log.read_text()
                time.sleep(0.1)
            os.kill(listener, signal.SIGINT)
            os.kill(listener, signal.SIGTERM)
            assert _gone_within([listener], 5) == [], f"attempt {attempt}: the listener did not stop"
            assert _port_free(port), attempt
        finally:
            _kill_leftovers([listener])
            shell.wait(timeout=10)
