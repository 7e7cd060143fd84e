"""A real Orthanc PACS (Debian's `orthanc` with `orthanc-dicomweb`) for the DICOM network tests.

Each Orthanc runs with its own JSON configuration, storage and index in a temporary folder, on free loopback
ports, HTTP limited to this machine (RemoteAccessAllowed false) and C-STORE accepted only from the modalities it
knows (as a hospital PACS is set up). Test modules wrap `orthanc_running` in a fixture of their own.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ORTHANC = Path("/usr/sbin/Orthanc")
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
ORTHANC_AET = "ORTHANC_TEST"


def free_port() -> int:
    """A port nobody listens on right now (the kernel's choice for an ephemeral bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def require_orthanc() -> None:
    missing = [str(path) for path in (ORTHANC, DICOMWEB_PLUGIN) if not path.exists()]
    if missing:
        pytest.skip(f"Orthanc is not installed ({', '.join(missing)} missing; test.sh installs orthanc and "
                    "orthanc-dicomweb from Debian)")  # fmt: skip


class OrthancError(RuntimeError):
    pass


class Orthanc:
    """One Orthanc process and a small client for its REST API (standard library only)."""

    def __init__(self, *, workdir: Path, aet: str = ORTHANC_AET) -> None:
        self.workdir = workdir
        self.aet = aet
        self.dicom_port = free_port()
        self.http_port = free_port()
        self.log = workdir / "orthanc.log"
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.base_url}/dicom-web"

    def configuration(self) -> dict[str, Any]:
        return {
            "Name": "mammo-test-pacs",
            "StorageDirectory": str(self.workdir / "storage"),
            "IndexDirectory": str(self.workdir / "index"),
            "DicomAet": self.aet,
            "DicomPort": self.dicom_port,
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,  # HTTP from this machine only
            "AuthenticationEnabled": False,  # loopback only, and nobody else has an account here
            # Only known modalities may store, and only from their own address.
            "DicomAlwaysAllowStore": False,
            "DicomAlwaysAllowEcho": False,
            "DicomCheckModalityHost": True,
            "DicomCheckCalledAet": True,
            "DicomModalities": {},
            "DicomScuTimeout": 30,
            "HttpTimeout": 60,
            "StorageCompression": False,
            "ConcurrentJobs": 2,
            "HttpThreadsCount": 10,
            "SaveJobs": False,
            "Plugins": [str(DICOMWEB_PLUGIN)],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False, "Servers": {}},
        }

    def start(self, *, timeout: float = 60) -> None:
        require_orthanc()
        config = self.workdir / "orthanc.json"
        config.write_text(json.dumps(self.configuration(), indent=2))
        handle = open(self.log, "ab")  # noqa: SIM115 - the child process writes it until stop()
        self.process = subprocess.Popen(
            [str(ORTHANC), str(config)], cwd=self.workdir, stdout=handle, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise OrthancError(f"Orthanc exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if self.get("/system").get("DicomAet") == self.aet:
                    return
            except (OSError, OrthancError):
                time.sleep(0.2)
        self.stop()
        raise OrthancError(f"Orthanc did not answer within {timeout} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    # --- REST --------------------------------------------------------------------------------------------------

    def request(
        self, method: str, path: str, *, body: bytes | None = None, content_type: str = ""
    ) -> tuple[int, bytes]:
        request = urllib.request.Request(self.base_url + path, data=body, method=method)
        if content_type:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def json_request(self, method: str, path: str, payload: Any = None) -> Any:
        body = None if payload is None else json.dumps(payload).encode()
        status, data = self.request(method, path, body=body, content_type="application/json" if body else "")
        if status >= 400:
            raise OrthancError(f"{method} {path} -> {status}: {data[:2000]!r}")
        return json.loads(data) if data.strip() else None

    def get(self, path: str) -> Any:
        return self.json_request("GET", path)

    def upload(self, data: bytes) -> dict:
        """POST /instances: store one DICOM file, as a modality would."""
        status, body = self.request("POST", "/instances", body=data, content_type="application/dicom")
        if status >= 400:
            raise OrthancError(f"upload -> {status}: {body[:2000]!r}")
        return json.loads(body)

    def add_modality(self, name: str, *, aet: str, host: str, port: int) -> None:
        """Declare a DICOM peer (PUT /modalities/{name}); it may echo and store into this Orthanc."""
        self.json_request(
            "PUT",
            f"/modalities/{name}",
            {"AET": aet, "Host": host, "Port": port, "AllowEcho": True, "AllowStore": True, "AllowFind": False,
             "AllowMove": False, "AllowGet": False},
        )  # fmt: skip

    def store_to_modality(self, name: str, resources: list[str], *, timeout: int = 120) -> dict:
        """C-STORE the given Orthanc resources (ids) to the modality, synchronously."""
        return self.json_request(
            "POST", f"/modalities/{name}/store", {"Resources": resources, "Synchronous": True, "Timeout": timeout}
        )

    def find_instances(self, **query: str) -> list[dict]:
        """The instances whose DICOM tags match (tools/find at instance level), with their tags."""
        return self.json_request("POST", "/tools/find", {"Level": "Instance", "Query": query, "Expand": True})

    def instance_file(self, orthanc_id: str) -> bytes:
        status, body = self.request("GET", f"/instances/{orthanc_id}/file")
        if status != 200:
            raise OrthancError(f"file of {orthanc_id} -> {status}")
        return body


@contextlib.contextmanager
def orthanc_running(workdir: Path) -> Iterator[Orthanc]:
    """A started Orthanc in `workdir`, stopped on exit. Test modules wrap it in their own fixture."""
    server = Orthanc(workdir=workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
