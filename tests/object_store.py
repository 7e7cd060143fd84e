"""An S3-compatible server for the tests that run the media store on an object store (MEDIA_STORAGE=s3).

It is moto's server mode (`python -m moto.server`, from PyPI: moto[server]): an in-memory EMULATION of Amazon S3's
HTTP API, not a real object store. It answers the requests boto3 and django-storages send (PUT, multipart uploads,
GET, HEAD, DELETE, listing) the way S3 documents them, which is what these tests check: that the platform uses the
Storage API and nothing else. Its durability, consistency and performance say nothing about a real store. No real
S3-compatible server installs here from PyPI or Debian (MinIO and Garage are not packaged; Debian's radosgw needs a
Ceph cluster).

One server per test session, started by the first test that asks for it, on a free port of 127.0.0.1, as a process of
its own (so that Celery worker and `manage.py` subprocesses reach it too); each test gets a bucket of its own.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

# moto accepts any credentials; these are the test's own, never a default of the platform's.
ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-key"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class S3Server:
    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        handle = open(self.log, "ab")  # noqa: SIM115  (the child writes to it)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/moto-api/", timeout=2).close()
                return
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.2)
        raise RuntimeError(f"moto's S3 server did not start: {self.log.read_text(errors='replace')[-2000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def client(self):
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.url, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )  # fmt: skip

    def new_bucket(self) -> str:
        name = f"mammo-test-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name


@dataclass(frozen=True)
class ObjectStore:
    """One test's bucket: the environment that selects it (for subprocesses) and the server."""

    server: S3Server
    bucket: str

    @property
    def env(self) -> dict[str, str]:
        return {
            "MEDIA_STORAGE": "s3",
            "S3_ENDPOINT_URL": self.server.url,
            "S3_BUCKET": self.bucket,
            "S3_REGION": REGION,
            "S3_ACCESS_KEY_ID": ACCESS_KEY,
            "S3_SECRET_ACCESS_KEY": SECRET_KEY,
        }

    def keys(self) -> list[str]:
        pages = self.server.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


def storages_entry(env: dict[str, str]) -> dict:
    """The STORAGES["default"] entry the platform's settings make of this environment."""
    import environ

    from mammo_platform.settings_storage import media_storage

    reader = environ.Env()
    reader.ENVIRON = dict(env)
    return media_storage(reader, media_root=Path("/unused"))[1]
