"""How the platform is served: the one gunicorn configuration (run.sh and the Docker stack), sessions read from the
cache, and the load and upload-memory benchmarks' files (README, "Load (50 vs 10 clients)", "Upload memory"). The
benchmarks themselves are timings and are not run here."""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.conftest import REPO

CONF = REPO / "mammo_platform" / "gunicorn_conf.py"
GUNICORN_ENV = ("WEB_CONCURRENCY", "WEB_THREADS", "GUNICORN_TIMEOUT", "GUNICORN_GRACEFUL_TIMEOUT")
GUNICORN_ENV += ("GUNICORN_MAX_REQUESTS",)


def _conf(monkeypatch, **env) -> dict:
    for name in GUNICORN_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(CONF))


def test_the_gunicorn_configuration_has_the_expected_defaults(monkeypatch):
    conf = _conf(monkeypatch)
    assert conf["wsgi_app"] == "mammo_platform.wsgi:application"
    assert conf["worker_class"] == "gthread"
    assert (conf["workers"], conf["threads"]) == (3, 4)
    assert (conf["timeout"], conf["graceful_timeout"]) == (120, 30)
    assert conf["max_requests"] == 0  # recycling a worker costs seconds of imports under load: off unless asked
    assert (conf["limit_request_line"], conf["limit_request_fields"], conf["limit_request_field_size"]) == (
        8190,
        100,
        8190,
    )


def test_the_gunicorn_configuration_reads_the_environment_and_refuses_nonsense(monkeypatch):
    conf = _conf(monkeypatch, WEB_CONCURRENCY="5", WEB_THREADS="2", GUNICORN_TIMEOUT="60", GUNICORN_MAX_REQUESTS="500")
    assert (conf["workers"], conf["threads"], conf["timeout"]) == (5, 2, 60)
    assert (conf["max_requests"], conf["max_requests_jitter"]) == (500, 50)
    with pytest.raises(SystemExit, match="WEB_THREADS must be a whole number"):
        _conf(monkeypatch, WEB_THREADS="lots")
    with pytest.raises(SystemExit, match="WEB_CONCURRENCY must be at least 1"):
        _conf(monkeypatch, WEB_CONCURRENCY="0")


def test_gunicorn_itself_accepts_the_configuration():
    check = subprocess.run(
        [str(Path(sys.executable).with_name("gunicorn")), "-c", str(CONF), "--check-config"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_compose_gives_gunicorn_longer_than_its_graceful_timeout(monkeypatch):
    compose = yaml.safe_load((REPO / "docker" / "compose.yml").read_text())
    grace = compose["services"]["web"]["stop_grace_period"]
    seconds = int(re.fullmatch(r"(\d+)s", grace).group(1))
    assert seconds > _conf(monkeypatch)["graceful_timeout"]


@pytest.mark.parametrize("script", ["run.sh", "docker/entrypoint.sh"])
def test_run_sh_and_the_container_start_gunicorn_with_the_configuration(script):
    # run.sh's start itself is exercised by tests/test_run_script.py and the container's by tests/test_docker_stack.py.
    text = (REPO / script).read_text()
    starts = [line for line in text.splitlines() if re.search(r"gunicorn mammo_platform|gunicorn -c", line)]
    assert starts and all("-c mammo_platform/gunicorn_conf.py" in line for line in starts), starts
    # Nothing the configuration owns is given again on the command line (it would silently win over the file).
    for option in ("--workers", "--threads", "--timeout", "--worker-class", "--limit-request", "--graceful-timeout"):
        assert option not in text, f"{script} sets {option} itself"


def test_the_locustfile_loads_and_defines_both_roles():
    listed = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(REPO / "benchmarks" / "locustfile.py"), "--list"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    assert {"Radiologist", "Technologist"} <= set(listed.stdout.split())


def test_the_benchmark_sandbox_ignores_the_callers_database_and_broker(monkeypatch):
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from sandbox import Sandbox
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    monkeypatch.setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/clinical")
    monkeypatch.setenv("MEDIA_ROOT", "/clinical/media")
    box = Sandbox()
    try:
        # The caller's database is dropped from the environment; the sandbox's own is created on entering it
        # (core.benchmark_sandbox.throwaway_database_create, a mammo_benchmark_<random> database).
        assert "DATABASE_URL" not in box.env and box.database == ""
        assert box.env["MEDIA_ROOT"].startswith(str(box.tmp))
        assert box.env["CELERY_QUEUE"] == box.queue != "inference"
    finally:
        os.rmdir(box.tmp)


def test_a_signed_in_page_reads_its_session_from_the_cache_and_signing_out_ends_it(client, technologist):
    client.force_login(technologist)
    client.get("/studies/")
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/studies/").status_code == 200
    assert not [q["sql"] for q in queries.captured_queries if "django_session" in q["sql"]]
    cookie = client.cookies["sessionid"].value
    assert client.post("/accounts/logout/").status_code == 302
    client.cookies["sessionid"] = cookie  # the old cookie, replayed after signing out
    response = client.get("/studies/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
