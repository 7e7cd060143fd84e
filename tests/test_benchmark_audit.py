"""The audit throughput benchmark runs its writers on a PostgreSQL database of its own, dropped afterwards, and
checks the chains it wrote."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from audit.models import AuditEvent
from tests.conftest import REPO

pytestmark = pytest.mark.slow


def test_the_audit_benchmark_measures_on_its_own_database(transactional_db, settings):
    from django.db import connection

    db = connection.settings_dict
    server = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/postgres"
    # Pointed at this test's database on purpose: the command must ignore it.
    env = {**os.environ, "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"}
    command = [sys.executable, "manage.py", "benchmark_audit", "--seconds", "0.5", "--writers", "1,3",
               "--hold-ms", "0,2", "--chains", "1,16", "--postgres-server", server]  # fmt: skip
    run = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    rows = [line.split() for line in run.stdout.splitlines() if "commits after" in line]
    assert sorted((r[0], r[3], r[5]) for r in rows) == sorted(
        (chains, hold, writers) for chains in ("1", "16") for hold in ("0", "2") for writers in ("1", "3")
    )
    assert all(float(r[6]) > 0 for r in rows)
    assert ", intact" in run.stdout
    assert not AuditEvent.objects.filter(action="image.downloaded").exists()  # nothing written here
    own = run.stdout.split("throwaway database ")[1].split()[0]
    assert own.startswith("mammo_benchmark_") and own != db["NAME"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM pg_database WHERE datname = %s", [own])
        assert cursor.fetchone()[0] == 0  # dropped afterwards


def test_the_audit_benchmark_asks_for_a_postgres_server():
    run = subprocess.run([sys.executable, "manage.py", "benchmark_audit"], cwd=REPO, capture_output=True, text=True)
    assert run.returncode != 0 and "--postgres-server is required" in run.stderr
