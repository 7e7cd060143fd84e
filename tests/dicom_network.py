"""The real listener process (`manage.py dicom_listener`) for tests, on the test database and the test worker's
queue, and a small pynetdicom SCU."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pydicom.uid import ExplicitVRLittleEndian, RLELossless
from pynetdicom import AE
from pynetdicom.sop_class import (
    DigitalMammographyXRayImageStorageForPresentation,
    SecondaryCaptureImageStorage,
    Verification,
)

from tests.orthanc import free_port

REPO = Path(__file__).resolve().parent.parent
LISTENER_AET = "MAMMO_AI"
SCU_AET = "MG_ROOM_1"


def database_env(settings) -> dict[str, str]:
    from django.db import connection

    db = connection.settings_dict
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_QUEUE": settings.CELERY_TASK_DEFAULT_QUEUE,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "MODEL_DIR": str(settings.MODEL_DIR),
        "SECRET_KEY": "test-only-secret",
        "CONN_MAX_AGE": "0",
    }


class ListenerProcess:
    def __init__(self, *, env: dict[str, str], workdir: Path, peers: list[str]) -> None:
        self.port = free_port()
        self.spool = workdir / "spool"
        self.log = workdir / "listener.log"
        self.env = {
            **env,
            "DICOM_AE_TITLE": LISTENER_AET,
            "DICOM_PORT": str(self.port),
            "DICOM_BIND_ADDRESS": "127.0.0.1",
            "DICOM_ALLOWED_PEERS": ",".join(peers),
            "DICOM_SPOOL_DIR": str(self.spool),
        }
        self.process: subprocess.Popen | None = None

    def start(self, *, timeout: float = 60) -> None:
        offset = self.log.stat().st_size if self.log.exists() else 0  # a restart appends to the same log
        handle = open(self.log, "ab")  # noqa: SIM115 - written by the child until it ends
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "dicom_listener"], cwd=REPO, env=self.env, stdout=handle,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"listener exited with {self.process.returncode}:\n{self.log_tail()}")
            if f"on 127.0.0.1:{self.port}" in self.log.read_bytes()[offset:].decode(errors="replace"):
                return
            time.sleep(0.2)
        raise AssertionError(f"listener did not start within {timeout} s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: the listener dies at once, mid-association, as on a power cut."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-6000:] if self.log.exists() else ""


def scu(ae_title: str = SCU_AET) -> AE:
    ae = AE(ae_title=ae_title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 60
    for sop_class in (DigitalMammographyXRayImageStorageForPresentation, SecondaryCaptureImageStorage):
        for syntax in (ExplicitVRLittleEndian, RLELossless):
            ae.add_requested_context(sop_class, [syntax])
    ae.add_requested_context(Verification)
    return ae


class WebServer:
    """The platform under gunicorn (as run.sh and docker run it) on the test database: Django's test server
    cannot read chunked request bodies, which Orthanc's STOW-RS client sends."""

    def __init__(self, *, env: dict[str, str], workdir: Path) -> None:
        self.port = free_port()
        self.env = env
        self.log = workdir / "gunicorn.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, timeout: float = 60) -> None:
        import urllib.error
        import urllib.request

        handle = open(self.log, "ab")  # noqa: SIM115 - written by the child until it ends
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "mammo_platform.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
             "--workers", "1", "--threads", "4", "--timeout", "120"],
            cwd=REPO, env=self.env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"gunicorn exited:\n{self.log.read_text(errors='replace')[-4000:]}")
            try:
                urllib.request.urlopen(f"{self.url}/livez", timeout=2)
                return
            except (urllib.error.URLError, OSError):
                time.sleep(0.3)
        raise AssertionError("gunicorn did not answer in time")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
