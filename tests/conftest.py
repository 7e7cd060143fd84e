"""Shared fixtures: users per role, API clients, a real small Keras model, and a real Celery worker process.

Tests run against the real PostgreSQL and Redis (test.sh sets DATABASE_URL and CELERY_BROKER_URL). Tests that
need the worker use the `celery_worker` fixture together with `transactional_db`, so that what the test writes is
committed and visible to the worker's own database connection.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from rest_framework.test import APIClient

from accounts.roles import Role

REPO = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-battery-staple-7"
TINY_INPUT = 64


# The fast lane (`bash test.sh --fast`): every test but those carrying one of these markers (pyproject.toml says what
# each means). A test that starts a Celery worker or a browser, or uses the real Keras model, is marked by its fixture
# (below); others that need TensorFlow, or take minutes, are marked by hand. The whole suite (`bash test.sh`) stays
# what CI runs.
FAST_LANE_LEAVES_OUT = ("browser", "docker", "model", "slow", "worker")
MARKERS_BY_FIXTURE = {
    "celery_worker": "worker",
    "browser": "browser",
    "active_model": "model",
    "tiny_model_file": "model",
}


def pytest_addoption(parser):
    parser.addoption(
        "--fast",
        action="store_true",
        help=f"the fast lane: leave out the tests marked {', '.join(FAST_LANE_LEAVES_OUT)} (a few minutes)",
    )


def pytest_collection_modifyitems(config, items):
    for item in items:
        for fixture, marker in MARKERS_BY_FIXTURE.items():
            if fixture in item.fixturenames:
                item.add_marker(marker)
    if not config.getoption("--fast"):
        return
    kept, left_out = [], []
    for item in items:
        (left_out if any(item.get_closest_marker(m) for m in FAST_LANE_LEAVES_OUT) else kept).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hashing():
    """Test users' passwords are hashed with a fast hasher (Django's advice for tests): PBKDF2's million rounds cost
    about a second per user on this machine, several per test. What is tested about passwords (validation, sign-in,
    lockout, token rotation) does not depend on the hasher; processes the tests start use the real one."""
    from django.test import override_settings

    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture(scope="session", autouse=True)
def _close_stray_connections(django_db_setup, django_db_blocker):
    """Before the test database is dropped, end the connections that worker processes or the live server's
    thread left open (otherwise the drop fails with 'being accessed by other users')."""
    yield
    from django.db import DatabaseError, connection

    if connection.vendor != "postgresql" or not str(connection.settings_dict["NAME"]).startswith("test_"):
        return  # no test database was set up by this run (or it is already gone)
    with django_db_blocker.unblock():
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
        except DatabaseError:
            pass  # nothing to close: the drop that follows reports any real problem


@pytest.fixture(autouse=True)
def _isolated_storage(settings, tmp_path_factory):
    """Each test writes media and model files under its own temporary folder."""
    root = tmp_path_factory.mktemp("media")
    settings.MEDIA_ROOT = root
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {**settings.STORAGES["default"], "OPTIONS": {"location": root}},
    }
    settings.MODEL_DIR = tmp_path_factory.mktemp("models")
    _clear_this_runs_cache()
    yield


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """moto's S3 server (an emulator: tests/object_store.py says what that means), one per session."""
    from tests.object_store import S3Server

    server = S3Server(tmp_path_factory.mktemp("s3-server") / "moto.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def object_store(s3_server, settings):
    """The media store on an S3-compatible object store (MEDIA_STORAGE=s3), in a bucket of this test's own. MEDIA_ROOT
    stays this test's folder: it then holds only incoming/."""
    from tests.object_store import ObjectStore, storages_entry

    store = ObjectStore(server=s3_server, bucket=s3_server.new_bucket())
    settings.MEDIA_STORAGE = "s3"
    settings.STORAGES = {**settings.STORAGES, "default": storages_entry(store.env)}
    return store


@pytest.fixture(params=["local", "s3"])
def media_store(request, settings):
    """Each backend of the media store in turn: the local folder (the default) and the object store."""
    if request.param == "s3":
        return request.getfixturevalue("object_store")
    return None


def media_env(settings, *, host_folder: Path | None = None) -> dict[str, str]:
    """The environment that gives a subprocess (a worker, a command) this test's media store. With the object store,
    `host_folder` gives it a MEDIA_ROOT (its incoming/) of its own: another host, sharing no disk."""
    store = settings.STORAGES["default"]
    if not store["BACKEND"].endswith("S3Storage"):
        return {"MEDIA_STORAGE": "local", "MEDIA_ROOT": str(settings.MEDIA_ROOT)}
    options = store["OPTIONS"]
    return {
        "MEDIA_STORAGE": "s3",
        "MEDIA_ROOT": str(host_folder or settings.MEDIA_ROOT),
        "S3_ENDPOINT_URL": options["endpoint_url"],
        "S3_BUCKET": options["bucket_name"],
        "S3_REGION": options["region_name"] or "",
        "S3_ACCESS_KEY_ID": options["access_key"],
        "S3_SECRET_ACCESS_KEY": options["secret_key"],
    }


def _clear_this_runs_cache() -> None:
    """Forget cached state between tests: only this run's keys (test.sh gives each run its own prefix),
    never the whole Redis database another run may be using."""
    from django.core.cache import cache

    prefix = django_settings.CACHES["default"].get("KEY_PREFIX", "")
    client = getattr(cache, "_cache", None)
    if prefix and client is not None and hasattr(client, "get_client"):
        redis_client = client.get_client(None, write=True)
        keys = list(redis_client.scan_iter(match=f"{prefix}:*"))
        if keys:
            redis_client.delete(*keys)
    else:
        cache.clear()


def make_user(role: str, username: str | None = None):
    from accounts.services import user_create

    return user_create(username=username or f"{role}-{uuid.uuid4().hex[:6]}", password=PASSWORD, role=role)


@pytest.fixture
def technologist(db):
    return make_user(Role.TECHNOLOGIST, "tech")


@pytest.fixture
def radiologist(db):
    return make_user(Role.RADIOLOGIST, "rad")


@pytest.fixture
def lead(db):
    return make_user(Role.LEAD_RADIOLOGIST, "lead")


@pytest.fixture
def auditor(db):
    return make_user(Role.AUDITOR, "auditor")


@pytest.fixture
def admin_user(db):
    return make_user(Role.ADMIN, "admin")


def api_client_for(user) -> APIClient:
    """An API client signed in with a fresh API token of the user's (issued as the token endpoint does)."""
    from accounts.tokens import token_issue

    client = APIClient()
    _, token = token_issue(user=user, address="127.0.0.1")
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory) -> Path:
    """A real EfficientNet-B0 classifier at 64 px with fixed random weights, saved as .keras."""
    import keras

    from inference.serving.backbones import build_classifier

    keras.utils.set_random_seed(7)
    model = build_classifier(backbone="b0", input_size=TINY_INPUT)
    path = tmp_path_factory.mktemp("tiny-model") / "tiny.keras"
    model.save(path)
    return path


@pytest.fixture
def active_model(db, tiny_model_file):
    from inference.serving.registry import model_version_register

    return model_version_register(
        path=tiny_model_file,
        name=f"tiny-{uuid.uuid4().hex[:6]}",
        backbone="b0",
        input_size=TINY_INPUT,
        activate=True,
        confirm_unvalidated=True,  # random weights, no test figures: not validated
    )


class WorkerProcess:
    """A real `celery worker` subprocess on the test database and a private queue."""

    def __init__(self, *, env: dict, log: Path):
        self.env = env
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self, *, beat: bool = True, pool: str = "solo", concurrency: int = 1) -> None:
        """beat=True (as run.sh starts it, and as every deployment runs a beat: delayed steps such as a study's
        report and a delivery's backoff are sent by its outbox sweep): embedded Celery beat, its schedule file
        beside the log.
        pool="threads", concurrency=2: as docker and run.sh run it (solo: one job at a time, the simplest to
        reason about in a test)."""
        handle = open(self.log, "ab")  # noqa: SIM115
        extra = ["--beat", "--schedule", str(self.log.with_name("beat-schedule"))] if beat else []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "mammo_platform", "worker", "--pool", pool,
             "--concurrency", str(concurrency), "--loglevel", "INFO", "-Q", self.env["CELERY_QUEUE"],
             "--without-gossip", "--without-mingle", "--without-heartbeat", *extra],
            cwd=REPO, env=self.env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def kill(self) -> None:
        """SIGKILL: the worker dies mid-task, as on a power cut or an out-of-memory kill."""
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
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


@pytest.fixture
def celery_worker(transactional_db, settings, tmp_path):
    from django.db import connection

    queue = f"test-{uuid.uuid4().hex[:10]}"
    previous_queue = settings.CELERY_TASK_DEFAULT_QUEUE
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    from mammo_platform.celery import app

    app.conf.task_default_queue = queue
    # This process must publish to the broker the worker listens on, whatever an earlier test did to the app.
    celery_use_broker(app, settings.CELERY_BROKER_URL)
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_QUEUE": queue,
        "CELERY_VISIBILITY_TIMEOUT": "5",
        # Fast heartbeats, so that a killed worker's job is known to be interrupted within seconds; the outbox
        # sweep (with beat=True) every second; a study is stable one second after its last image.
        "WORKER_HEARTBEAT_SECONDS": "1",
        "WORKER_HEARTBEAT_TIMEOUT": "4",
        "OUTBOX_SWEEP_SECONDS": "1",
        "DICOM_STUDY_STABLE_SECONDS": "1",
        # The media store this test uses (the local folder, or the object store seen from a host of its own).
        **media_env(settings, host_folder=tmp_path / "worker-host"),
        "MODEL_DIR": str(settings.MODEL_DIR),
        "SECRET_KEY": "test-only-secret",
        "CONN_MAX_AGE": "0",
    }
    worker = WorkerProcess(env=env, log=tmp_path / "worker.log")
    worker.start()
    yield worker
    worker.stop()
    app.conf.task_default_queue = previous_queue


@pytest.fixture
def private_broker(tmp_path, settings, celery_worker, monkeypatch):
    """The worker and this process use a private Redis as their broker."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    from mammo_platform.celery import app
    from tests.brokers import PrivateRedis

    redis = PrivateRedis(tmp_path)
    redis.start()
    celery_worker.stop()
    celery_worker.env["CELERY_BROKER_URL"] = redis.url
    previous = app.conf.broker_url
    settings.CELERY_BROKER_URL = redis.url
    # Celery reads CELERY_BROKER_URL from the environment before its configuration (test.sh exports it).
    monkeypatch.setenv("CELERY_BROKER_URL", redis.url)
    celery_use_broker(app, redis.url)
    yield redis
    redis.kill()
    monkeypatch.undo()
    celery_use_broker(app, previous)


def celery_use_broker(app, url: str) -> None:
    """Point this process's Celery app at a broker, dropping every pooled connection and producer (also when it
    is the same URL: a pooled connection may be from a broker that was stopped and started again)."""
    from kombu import pools

    app.conf.broker_url = url
    # Celery's connection and producer pools are kombu's process-wide ones: close and forget them all (closing only
    # the app's pool would leave a closed pool registered for that URL, and every later send would fail).
    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


def wait_for(predicate, *, timeout: float = 90, interval: float = 0.25, worker: WorkerProcess | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    detail = f"\n--- worker log ---\n{worker.log_tail()}" if worker else ""
    raise AssertionError(f"Timed out after {timeout} s waiting for {predicate.__name__}{detail}")


@pytest.fixture
def browser(tmp_path):
    """A headless Debian chromium driven by Playwright; one fresh profile per test."""
    from playwright.sync_api import sync_playwright

    from tests.browser import CHROMIUM, CHROMIUM_ARGS, require_chromium

    require_chromium()
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()
