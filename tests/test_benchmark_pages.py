"""The page benchmark builds thousands of rows: it must run on a database of its own, never the configured one,
and leave no database behind on the PostgreSQL server it is given."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cases.models import Study
from tests.conftest import REPO

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_the_page_benchmark_never_touches_the_configured_database(transactional_db, settings, engine):
    from django.db import connection

    db = connection.settings_dict
    server = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/postgres"
    env = {
        **os.environ,
        # Pointed at this test's (real, committed) database and media on purpose: the command must ignore them.
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
    }
    command = [sys.executable, "manage.py", "benchmark_pages", "--studies", "6,12", "--repeat", "2"]
    if engine == "postgres":
        command += ["--postgres-server", server]
    run = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "throwaway" in run.stdout and ("postgresql" if engine == "postgres" else "sqlite") in run.stdout
    assert "site: 6 studies" in run.stdout and "site: 12 studies" in run.stdout
    table = run.stdout.split("site: 12 studies")[1]
    for url in ("/reading/?queue=completed", "/studies/", "/api/studies/", "/audit/", "/performance/"):
        line = next(row for row in table.splitlines() if row.startswith(url + " "))
        assert " 200 " in line, line
    assert Study.objects.count() == 0  # nothing written here
    if engine == "postgres":
        own = run.stdout.split("throwaway database ")[1].split()[0]
        assert own.startswith("mammo_benchmark_") and own != db["NAME"]
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM pg_database WHERE datname = %s", [own])
            assert cursor.fetchone()[0] == 0  # dropped afterwards
