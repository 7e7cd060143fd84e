"""The one way a benchmark command runs: in a child process on a throwaway database and media folder of its own.

A benchmark writes and deletes rows by the thousand, so whatever DATABASE_URL, MEDIA_ROOT, the cache or the broker
say, the command re-runs itself (`manage.py <command> ...`) with an environment pointing at a new temporary
directory: an embedded SQLite database, media and model folders, a cache in process memory and an in-memory
broker. With `postgres_server` (a server URL) the child gets instead a NEW database created on that server for the
run (named mammo_benchmark_<random>), dropped afterwards: the figures are then PostgreSQL's, as in production, and
still no existing database is opened. The child checks where it is (require_sandbox) before writing anything.

    def handle(self, *args, **options):
        if in_sandbox():
            require_sandbox()
            return self._benchmark(...)
        run_in_sandbox("benchmark_x", [...], stdout=self.stdout)
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.core.management.base import CommandError

SANDBOX_ENV = "MAMMO_BENCHMARK_SANDBOX"
SANDBOX_DATABASE_ENV = "MAMMO_BENCHMARK_DATABASE"
DATABASE_PREFIX = "mammo_benchmark_"


def in_sandbox() -> bool:
    return bool(os.environ.get(SANDBOX_ENV))


def sandbox_dir() -> Path:
    return Path(os.environ[SANDBOX_ENV])


def require_sandbox() -> None:
    """Refuses to go on unless the database and the media folder are the ones run_in_sandbox made."""
    sandbox = sandbox_dir().resolve()
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        own_database = sandbox in Path(str(db["NAME"])).resolve().parents
    else:
        expected = os.environ.get(SANDBOX_DATABASE_ENV, "")
        own_database = expected.startswith(DATABASE_PREFIX) and db["NAME"] == expected
    local_media = getattr(settings, "MEDIA_STORAGE", "local") == "local"
    if not own_database or not local_media or sandbox not in Path(settings.MEDIA_ROOT).resolve().parents:
        raise CommandError("Refusing to run outside the benchmark's own temporary database and media folder.")


def run_in_sandbox(command: str, arguments: list[str], *, stdout, postgres_server: str | None = None) -> None:
    manage = Path(settings.BASE_DIR) / "manage.py"
    with tempfile.TemporaryDirectory(prefix="mammo-benchmark-") as tmp:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "CACHE_URL", "CELERY_BROKER_URL", SANDBOX_DATABASE_ENV)
        }
        env.update(
            {
                SANDBOX_ENV: tmp,
                "MAMMO_VAR_DIR": str(Path(tmp) / "var"),
                "MEDIA_ROOT": str(Path(tmp) / "media"),
                "MEDIA_STORAGE": "local",  # never the caller's object store
                "MODEL_DIR": str(Path(tmp) / "models"),
                "SECRET_KEY": secrets.token_urlsafe(32),
                "TF_CPP_MIN_LOG_LEVEL": env.get("TF_CPP_MIN_LOG_LEVEL", "2"),
            }
        )
        database = None
        if postgres_server:
            database = throwaway_database_create(postgres_server)
            env.update(
                {
                    SANDBOX_DATABASE_ENV: database,
                    "DATABASE_URL": database_url(postgres_server, database),
                    "CACHE_URL": "locmemcache://",
                    "CELERY_BROKER_URL": "memory://",
                }
            )
        where = f"database {database} on {urlsplit(postgres_server).hostname}" if database else "database"
        stdout.write(f"Benchmarking on a throwaway {where} and media folder in {tmp}")
        try:
            subprocess.run([sys.executable, str(manage), "migrate", "-v0"], env=env, check=True)
            child = subprocess.run([sys.executable, str(manage), command, *arguments], env=env)
        finally:
            if database:
                throwaway_database_drop(postgres_server, database)
        if child.returncode:
            raise CommandError(f"The benchmark failed (exit status {child.returncode}).")


def database_url(server_url: str, database: str) -> str:
    """The server's URL with another database name."""
    parts = urlsplit(server_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, ""))


def throwaway_database_create(server_url: str) -> str:
    """A new, empty database on that PostgreSQL server, named mammo_benchmark_<random>; returns its name. The only
    databases a benchmark may write to (also benchmarks/sandbox.py, which starts a whole platform on one)."""
    database = DATABASE_PREFIX + secrets.token_hex(6)
    _postgres(server_url, f'CREATE DATABASE "{database}"')
    return database


def throwaway_database_drop(server_url: str, database: str) -> None:
    if not database.startswith(DATABASE_PREFIX):  # never any other database, whatever the caller passes
        raise CommandError(f"Refusing to drop {database!r}: not a benchmark's throwaway database.")
    _postgres(server_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _postgres(server_url: str, statement: str) -> None:
    """CREATE/DROP DATABASE through the server's maintenance database (outside a transaction, as they need)."""
    import psycopg

    with psycopg.connect(database_url(server_url, "postgres"), autocommit=True) as connection:
        connection.execute(statement)
