"""The deployment a hospital runs, run for real: docker/compose.yml built, started, used, restarted, torn down.

The image is built from docker/Dockerfile and the stack (db, redis, web, worker, beat) started under a project name
and a port of its own, with an env file made from docker/env.example. Through the TLS-proxy settings the stack uses
(BEHIND_TLS_PROXY, secure cookies, the proxy's X-Forwarded-Proto), a user signs in; a real-size 16-bit RLE mammogram
goes in through the API and the worker's prediction and heatmap come out. A second worker started with --scale
takes jobs too. The README's upgrade path is followed to a newly built image while uploads go on; a worker stopped
in the middle of its jobs finishes them or hands them back; jobs queued while no worker runs survive a restart of
the whole stack; the study, the prediction, the heatmap and the audit trail survive it all. At the end everything
is removed, volumes included, and checked to be gone.

Needs a Docker engine and Compose (v2 `docker compose` or v1 `docker-compose`). test.sh starts them on this
machine kind through ../shared/tools/docker-standins/build.sh. Where Docker cannot run, the test is skipped with the
reason, except under CI=true where the stand-ins script exists (Docker is installable there): then it fails.
Phase timings and the stack's logs are written to test-artifacts/docker-stack/.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time

import pytest
from pydicom.uid import RLELossless

from tests.dicom_factory import make_dicom
from tests.docker_stack import (
    ARTIFACTS,
    REPO,
    SITE,
    ProxiedClient,
    Stack,
    compose_command,
    copy_of,
    free_port,
    job_statuses,
    real_size_mammogram,
    remove_image_keeping_dependency_layer,
    require_docker,
    run_command,
    upload,
    wait_until,
    write_env_file,
)

pytestmark = pytest.mark.docker

PASSWORD = "stack-test-password-7f3k"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --- Fixtures ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(request, tmp_path_factory):
    started = time.monotonic()
    require_docker()
    run_id = f"{os.getpid()}-{secrets.token_hex(2)}"
    folder = tmp_path_factory.mktemp("docker-stack")
    stack = Stack(
        project=f"mammo-ci-{run_id}",
        env_file=folder / "stack.env",
        port=free_port(),
        image=f"mammo-platform:ci-{run_id}",
        compose_cmd=compose_command(),
    )
    password = secrets.token_urlsafe(24)  # URL-safe: goes into DATABASE_URL unescaped, never contains "$"
    write_env_file(
        stack.env_file,
        COMPOSE_PROJECT_NAME=stack.project,
        MAMMO_IMAGE_TAG=stack.image.split(":", 1)[1],
        SECRET_KEY=secrets.token_urlsafe(50),
        POSTGRES_PASSWORD=password,
        DATABASE_URL=f"postgres://mammo:{password}@db:5432/mammo",
        ALLOWED_HOSTS=SITE,
        CSRF_TRUSTED_ORIGINS=f"https://{SITE}",
        WEB_PUBLISH=f"127.0.0.1:{stack.port}",
        DICOM_PUBLISH=f"127.0.0.1:{free_port()}",  # the listener's host port: never the default another run holds
        WEB_CONCURRENCY="2",
        WORKER_CPUS=str(min(2, os.cpu_count() or 1)),
        HEALTHCHECK_INTERVAL="3s",
    )
    try:
        stack.timings["docker_check_s"] = time.monotonic() - started
        phase = time.monotonic()
        stack.compose("build", "web", timeout=1800)
        stack.timings["build_s"] = time.monotonic() - phase
        phase = time.monotonic()
        stack.compose("up", "-d", timeout=600)
        stack.wait_healthy({"db": 1, "redis": 1, "web": 1, "worker": 1, "beat": 1, "listener": 1})
        stack.timings["up_to_all_healthy_s"] = time.monotonic() - phase
        yield stack
    finally:
        try:
            stack.save_logs()
        finally:
            stack.tear_down()
            stack.timings["total_s"] = time.monotonic() - started
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            (ARTIFACTS / "timings.json").write_text(json.dumps(stack.timings, indent=2) + "\n")
            reporter = request.config.pluginmanager.get_plugin("terminalreporter")
            capture = request.config.pluginmanager.get_plugin("capturemanager")
            if reporter is not None and capture is not None:
                figures = ", ".join(f"{k} {v:.0f}" for k, v in stack.timings.items())
                with capture.global_and_fixture_disabled():
                    reporter.write_line(f"\ndocker stack ({' '.join(stack.compose_cmd)}), seconds: {figures}")


@pytest.fixture(scope="module")
def radiologist_token(stack) -> str:
    created = stack.manage("adduser", "rad", "--role", "radiologist", input=f"{PASSWORD}\n".encode())
    assert b"Created rad" in created.stdout, created.stdout + created.stderr
    response = ProxiedClient(stack.port).post("/api/auth/token/", data={"username": "rad", "password": PASSWORD})
    assert response.status_code == 200, response.text
    return response.json()["token"]


@pytest.fixture(scope="module")
def mammogram() -> bytes:
    return real_size_mammogram()


@pytest.fixture(scope="module")
def analysed_study(stack, radiologist_token, mammogram) -> dict:
    """A real-size mammogram uploaded through the API and analysed by the worker: the study as the API shows it."""
    client = ProxiedClient(stack.port, token=radiologist_token)
    started = time.monotonic()
    study = upload(client, [("R_MLO.dcm", mammogram)])

    def finished():
        statuses = job_statuses(client, study["id"])
        return statuses if set(statuses) <= {"succeeded", "failed"} else None

    statuses = wait_until(finished, timeout=300, what="the worker to analyse the upload")
    assert statuses == ["succeeded"], client.get(f"/api/studies/{study['id']}/").text[:2000]
    stack.timings["upload_to_prediction_s"] = time.monotonic() - started
    return client.get(f"/api/studies/{study['id']}/").json()


# --- Tests -------------------------------------------------------------------------------------------------------


def test_it_runs_every_service_healthy_with_restart_policy_and_memory_limit(stack):
    services = {}
    for container in stack.containers():
        services.setdefault(container["Config"]["Labels"]["com.docker.compose.service"], []).append(container)
    assert sorted(services) == ["beat", "db", "listener", "redis", "web", "worker"]
    for name, containers in services.items():
        for container in containers:
            host = container["HostConfig"]
            assert host["RestartPolicy"]["Name"] == "unless-stopped", name
            assert host["Memory"] > 0, f"{name} has no memory limit"
            assert container["Config"].get("Healthcheck", {}).get("Test"), f"{name} has no health check"
            assert host["LogConfig"]["Type"] == "json-file", name
    # The application containers run as the unprivileged user, without Linux capabilities.
    for name in ("web", "worker", "beat", "listener"):
        container = services[name][0]
        assert container["Config"]["User"] == "mammo", name
        assert container["HostConfig"]["CapDrop"] == ["ALL"], name
    # Each health check says what it tested (docker keeps the checks' output).
    said = {
        name: services[name][0]["State"]["Health"]["Log"][-1]["Output"]
        for name in ("web", "worker", "beat", "listener")
    }
    assert "/healthz" in said["web"]
    assert "consumes 'inference' and ran a ping task" in said["worker"]
    assert "is ticking" in said["beat"]
    assert "answers C-ECHO on port" in said["listener"]


def test_it_signs_in_through_the_tls_proxy_settings(stack, radiologist_token):
    # Plain HTTP that did not come through the proxy is sent to HTTPS; a host name the site does not serve is refused.
    direct = ProxiedClient(stack.port, https=False).get("/accounts/login/")
    assert direct.status_code == 301 and direct.headers["Location"] == f"https://{SITE}/accounts/login/"
    assert ProxiedClient(stack.port).get("/accounts/login/", headers={"Host": "elsewhere.test"}).status_code == 400

    browser = ProxiedClient(stack.port)
    page = browser.get("/accounts/login/")
    assert page.status_code == 200
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    form = {"csrfmiddlewaretoken": csrf, "username": "rad"}
    origin = {"Referer": f"https://{SITE}/accounts/login/", "Origin": f"https://{SITE}"}
    refused = browser.post("/accounts/login/", data={**form, "password": "not-the-password"}, headers=origin)
    assert refused.status_code == 400 and "sessionid" not in browser.cookies
    signed_in = browser.post("/accounts/login/", data={**form, "password": PASSWORD}, headers=origin)
    assert signed_in.status_code == 302, signed_in.text[:500]
    assert browser.cookie_flags["sessionid"] == {"secure": True, "httponly": True}
    assert browser.cookie_flags["csrftoken"]["secure"] is True
    start = browser.get("/").headers["Location"]  # the role's start page (signed out: the login page)
    assert not start.startswith(("/accounts/login", f"https://{SITE}/accounts/login")), start
    assert browser.get(start.removeprefix(f"https://{SITE}")).status_code == 200
    assert browser.get("/api/studies/").status_code == 200  # the API accepts the signed-in session too


def test_it_analyses_a_real_size_dicom_uploaded_through_the_api(analysed_study, mammogram):
    (image,) = analysed_study["images"]
    assert (image["rows"], image["columns"], image["bits_stored"]) == (4600, 2800, 16)
    assert image["size_bytes"] == len(mammogram) > 20_000_000
    prediction = image["prediction"]
    assert 0.0 <= prediction["score"] <= 1.0
    assert prediction["score_kind"] in ("research_score", "calibrated_probability")
    # The shipped default model (default_model/model.keras), installed by the web container at start.
    assert prediction["model_version"] == json.loads((REPO / "default_model" / "model_card.json").read_text())["name"]
    assert prediction["heatmap_url"] == f"https://{SITE}/api/images/{image['id']}/heatmap/"


def test_it_serves_the_heatmap_with_credentials_only(stack, radiologist_token, analysed_study):
    path = f"/api/images/{analysed_study['images'][0]['id']}/heatmap/"
    heatmap = ProxiedClient(stack.port, token=radiologist_token).get(path)
    assert heatmap.status_code == 200 and heatmap.headers["Content-Type"] == "image/png"
    assert heatmap.content.startswith(PNG_SIGNATURE)
    assert ProxiedClient(stack.port).get(path).status_code == 401
    assert ProxiedClient(stack.port, token="0" * 40).get(path).status_code == 401
    stack.manage("adduser", "tech", "--role", "technologist", input=f"{PASSWORD}\n".encode())
    token = ProxiedClient(stack.port).post("/api/auth/token/", data={"username": "tech", "password": PASSWORD})
    assert ProxiedClient(stack.port, token=token.json()["token"]).get(path).status_code == 403  # no prediction.view


def test_a_second_worker_started_with_scale_takes_jobs_too(stack, radiologist_token, analysed_study):
    started = time.monotonic()
    (first,) = stack.service_containers("worker")
    before = stack.task_successes(first)
    stack.compose("up", "-d", "--no-recreate", "--scale", "worker=2")
    stack.wait_healthy({"db": 1, "redis": 1, "web": 1, "worker": 2, "beat": 1, "listener": 1})
    (second,) = [c for c in stack.service_containers("worker") if c["Id"] != first["Id"]]
    client = ProxiedClient(stack.port, token=radiologist_token)
    files = [(f"small-{n}.dcm", make_dicom(rows=640, columns=480, transfer_syntax=RLELossless)) for n in range(8)]
    study = upload(client, files)
    wait_until(lambda: job_statuses(client, study["id"]) == ["succeeded"] * len(files), timeout=300, what="8 analyses")
    assert stack.task_successes(second) >= 1, "the scaled-out worker took no job"
    assert stack.task_successes(first) > before, "the first worker took no job"
    stack.timings["scale_to_2_and_8_jobs_s"] = time.monotonic() - started


def test_the_upgrade_path_and_a_full_restart_lose_no_job_and_no_data(
    stack, radiologist_token, analysed_study, mammogram
):
    started = time.monotonic()
    client = ProxiedClient(stack.port, token=radiologist_token)
    image = analysed_study["images"][0]
    heatmap_path = f"/api/images/{image['id']}/heatmap/"
    heatmap_before = client.get(heatmap_path).content

    # The README's upgrade path. A new version's image is built while the stack runs; the workers and beat stop
    # (warm shutdown); uploads go on meanwhile and their jobs wait in Redis; `up -d` recreates the application
    # containers on the new image.
    new_image = f"{stack.image}-next"
    stack.images_built.append(new_image)
    built = run_command(
        ["docker", "build", "-f", "docker/Dockerfile", "--label", f"org.opencontainers.image.version={new_image}",
         "-t", new_image, "."],
        timeout=1800,
    )  # fmt: skip
    assert built.returncode == 0, (built.stdout + built.stderr).decode(errors="replace")[-3000:]
    stack.compose("stop", "worker", "beat", timeout=300)
    stack.save_logs("compose-logs-before-upgrade")
    queued = upload(client, [(f"queued-{n}.dcm", copy_of(mammogram)) for n in range(3)])
    assert job_statuses(client, queued["id"]) == ["queued"] * 3
    old_image = stack.use_image(new_image)
    upgraded = time.monotonic()
    stack.compose("up", "-d", timeout=600)  # returns once the new web is healthy (worker and beat wait for it)
    stack.timings["upgrade_up_to_web_healthy_s"] = time.monotonic() - upgraded
    new_id = (
        run_command(["docker", "image", "inspect", "--format", "{{.Id}}", new_image], timeout=60)
        .stdout.decode()
        .strip()
    )
    for service in ("web", "worker", "beat"):
        assert [c["Image"] for c in stack.service_containers(service)] == [new_id], service
    remove_image_keeping_dependency_layer(old_image)  # only untags it: the new image is built on top of it

    # The new worker's first jobs load the model: stop the worker while they run. Its warm shutdown finishes them
    # (or hands them back); nothing fails. It held at most 2 (2 threads, prefetch 1): the third stays in Redis.
    wait_until(lambda: "running" in job_statuses(client, queued["id"]), timeout=300, interval=0.2, what="a job to run")
    stack.compose("stop", "worker", timeout=300)
    at_stop = job_statuses(client, queued["id"])
    assert "failed" not in at_stop and "queued" in at_stop, at_stop
    stopped_log = run_command(["docker", "logs", stack.service_containers("worker")[0]["Id"]], timeout=60)
    assert b"warm shutdown" in (stopped_log.stdout + stopped_log.stderr).lower()

    # The whole stack goes down (containers and network removed, volumes kept) with that job still queued, and comes
    # back: the queue (Redis append-only file), the database and the files must survive.
    stack.save_logs("compose-logs-before-restart")
    stack.compose("down", timeout=600)
    assert stack.containers() == []
    restarted = time.monotonic()
    stack.compose("up", "-d", timeout=600)
    stack.wait_healthy({"db": 1, "redis": 1, "web": 1, "worker": 1, "beat": 1, "listener": 1})
    stack.timings["up_after_down_to_all_healthy_s"] = time.monotonic() - restarted
    wait_until(lambda: job_statuses(client, queued["id"]) == ["succeeded"] * 3, timeout=300, what="the queued jobs")

    # The first study, its prediction, its heatmap file and the audit trail came through it all unchanged.
    after = client.get(f"/api/studies/{analysed_study['id']}/").json()
    assert after["images"][0]["prediction"] == image["prediction"]
    assert client.get(heatmap_path).content == heatmap_before
    audit = stack.manage("verify_audit", check=False)
    assert audit.returncode == 0 and b"Audit trail intact" in audit.stdout, audit.stdout + audit.stderr
    stack.timings["upgrade_and_restart_s"] = time.monotonic() - started


def test_it_leaves_nothing_behind(stack):
    stack.save_logs()
    stack.tear_down()
    assert stack.leftovers() == {}
