"""A throwaway copy of the platform, started like production, for the benchmarks in this folder.

What it creates, and removes afterwards, whatever DATABASE_URL, CACHE_URL or CELERY_BROKER_URL say in the caller's
environment (those are ignored, as manage.py benchmark_inference ignores them):
- a PostgreSQL database of its own, `mammo_benchmark_<random>`, created on the server of BENCH_POSTGRES_URL (default
  postgres://postgres@127.0.0.1:5432/postgres) and dropped at the end, by the same functions as the manage.py
  benchmarks (core/benchmark_sandbox.py), which refuse to drop any other name;
- a media folder, a var folder and a model folder in a new temporary directory;
- on Redis (BENCH_REDIS_URL, default redis://127.0.0.1:6379): a cache key prefix and a Celery queue of its own,
  whose keys are deleted at the end (no other key is touched, no database is flushed);
- gunicorn with the project's configuration (mammo_platform/gunicorn_conf.py), as run.sh and docker start it.

`tree` is the checkout whose code runs (default: this one); the gunicorn configuration is always this checkout's,
so an older commit can be measured the same way (docs/performance-figures.md, "Upload memory").
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
GUNICORN_CONF = REPO / "mammo_platform" / "gunicorn_conf.py"
sys.path.insert(0, str(REPO))
from core.benchmark_sandbox import (  # noqa: E402  (Django-free functions of a module that needs none)
    database_url,
    throwaway_database_create,
    throwaway_database_drop,
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _exit_on_sigterm(signum, frame):
    raise SystemExit(f"stopped by signal {signum}")


class Sandbox:
    def __init__(self, *, tree: Path = REPO, python: str = sys.executable, extra_env: dict | None = None):
        self.tree = Path(tree).resolve()
        self.python = python
        self.token = secrets.token_hex(4)
        self.database = ""  # created on entering
        self.admin_url = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
        self.redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379").rstrip("/")
        self.tmp = Path(tempfile.mkdtemp(prefix="mammo-bench-"))
        self.cache_prefix = f"bench-{self.token}"
        self.queue = f"bench-{self.token}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: subprocess.Popen | None = None
        self.env = self._env(extra_env or {})

    # ---- environment -------------------------------------------------------------------------------------------

    def _env(self, extra: dict) -> dict:
        ignored = {"DATABASE_URL", "CACHE_URL", "CELERY_BROKER_URL", "MEDIA_ROOT", "MODEL_DIR"}
        ignored.add("DJANGO_SETTINGS_MODULE")
        env = {k: v for k, v in os.environ.items() if k not in ignored}
        env.update(
            {
                "CACHE_URL": f"{self.redis_url}/2",
                "CACHE_KEY_PREFIX": self.cache_prefix,
                "CELERY_BROKER_URL": f"{self.redis_url}/2",
                "CELERY_QUEUE": self.queue,
                "MAMMO_VAR_DIR": str(self.tmp / "var"),
                "MEDIA_ROOT": str(self.tmp / "media"),
                "MEDIA_STORAGE": "local",  # never the caller's object store
                "MODEL_DIR": str(self.tmp / "models"),
                "SECRET_KEY": secrets.token_urlsafe(32),
                "DEBUG": "false",
                "SECURE_COOKIES": "false",  # plain HTTP on 127.0.0.1
                "TF_CPP_MIN_LOG_LEVEL": "2",
                "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": str(self.tree),
            }
        )
        env.update(extra)
        return env

    # ---- life cycle --------------------------------------------------------------------------------------------

    def __enter__(self) -> Sandbox:
        # A SIGTERM (a CI timeout, kill) ends the benchmark through __exit__ too: database, keys and folder removed.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        self.database = throwaway_database_create(self.admin_url)
        self.env["DATABASE_URL"] = database_url(self.admin_url, self.database)
        print(f"sandbox: database {self.database}, folder {self.tmp}, code from {self.tree}", flush=True)
        self.manage("migrate", "--noinput", "-v0")
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        with contextlib.suppress(Exception):
            self._redis_cleanup()
        if self.database:
            with contextlib.suppress(Exception):
                throwaway_database_drop(self.admin_url, self.database)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _redis_cleanup(self) -> None:
        import redis

        client = redis.Redis.from_url(f"{self.redis_url}/2")
        for pattern in (f"{self.cache_prefix}:*", f"{self.queue}*", f"*{self.queue}*"):
            keys = list(client.scan_iter(match=pattern, count=1000))
            if keys:
                client.delete(*keys)

    def manage(self, *args: str, input: str | None = None) -> str:
        done = subprocess.run(
            [self.python, "manage.py", *args],
            cwd=self.tree,
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
        )
        if done.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def shell(self, code: str) -> str:
        """Runs Python code in a Django shell of the sandbox (the tree's own code)."""
        return self.manage("shell", "-c", code)

    def start(self, *, log_name: str = "gunicorn.log", extra_args: list[str] | None = None) -> subprocess.Popen:
        gunicorn = Path(self.python).with_name("gunicorn")
        self.log = self.tmp / log_name
        self.server = subprocess.Popen(
            [
                str(gunicorn),
                "-c",
                str(GUNICORN_CONF),
                "mammo_platform.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--access-logfile",
                "/dev/null",
                *(extra_args or []),
            ],
            cwd=self.tree,
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.log.read_text(errors='replace')[-4000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/livez", timeout=2):
                    return self.server
            except urllib.error.HTTPError:  # an older commit without /livez: any HTTP answer means it serves
                return self.server
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("gunicorn did not answer in 90 s")

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            os.killpg(self.server.pid, signal.SIGTERM)
            try:
                self.server.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(self.server.pid, signal.SIGKILL)
                self.server.wait(timeout=10)
        self.server = None
