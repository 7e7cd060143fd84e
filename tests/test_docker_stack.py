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
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from pydicom.uid import RLELossless, generate_uid

from tests.dicom_factory import make_dicom, patch_dicom

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO / "docker" / "compose.yml"
ENV_EXAMPLE = REPO / "docker" / "env.example"
STANDINS_SCRIPT = REPO.parent / "shared" / "tools" / "docker-standins" / "build.sh"
ARTIFACTS = REPO / "test-artifacts" / "docker-stack"
SITE = "mammo.test"  # the host name the TLS proxy serves
PASSWORD = "stack-test-password-7f3k"
TASK_SUCCEEDED = re.compile(r"Task inference\.run_inference\[[0-9a-f-]+\] succeeded")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DEPENDENCY_CACHE = "mammo-platform:build-cache-dependencies"


# --- Docker and Compose ----------------------------------------------------------------------------------------


def _run(command: list[str], *, timeout: float, input: bytes | None = None, env: dict | None = None):
    return subprocess.run(command, capture_output=True, timeout=timeout, input=input, env=env, cwd=REPO)


def compose_command() -> list[str] | None:
    """Compose v2 (the docker CLI plugin) when present, else v1 (docker-compose); MAMMO_COMPOSE overrides."""
    if os.environ.get("MAMMO_COMPOSE"):
        return os.environ["MAMMO_COMPOSE"].split()
    if shutil.which("docker") and _run(["docker", "compose", "version"], timeout=30).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def docker_problem() -> str | None:
    """Why Docker cannot be used here, or None."""
    if os.environ.get("MAMMO_DOCKER_TESTS") == "0":
        return "MAMMO_DOCKER_TESTS=0 was set"
    if not shutil.which("docker"):
        return "no docker command"
    info = _run(["docker", "info", "--format", "{{.ServerVersion}}"], timeout=60)
    if info.returncode != 0:
        return f"the Docker engine does not answer: {info.stderr.decode(errors='replace').strip()[:300]}"
    if compose_command() is None:
        return "neither `docker compose` (v2) nor `docker-compose` (v1) is installed"
    return None


def require_docker() -> None:
    problem = docker_problem()
    if problem is None:
        return
    hint = "test.sh starts an engine on this machine kind with ../shared/tools/docker-standins/build.sh"
    if os.environ.get("CI") == "true" and STANDINS_SCRIPT.exists() and os.environ.get("MAMMO_DOCKER_TESTS") != "0":
        pytest.fail(f"Docker is installable on this machine but not usable: {problem} ({hint}; see its log)")
    pytest.skip(f"Docker Compose smoke test skipped: {problem} ({hint})")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Stack:
    """One compose project of docker/compose.yml, driven through the Compose CLI as an operator would."""

    project: str
    env_file: Path
    port: int
    image: str
    compose_cmd: list[str]
    timings: dict[str, float] = field(default_factory=dict)
    images_built: list[str] = field(default_factory=list)
    torn_down: bool = False

    def compose(self, *args: str, timeout: float = 600, input: bytes | None = None, check: bool = True):
        env = {**os.environ, "MAMMO_ENV_FILE": str(self.env_file)}
        command = [*self.compose_cmd, "-p", self.project, "--env-file", str(self.env_file), "-f", str(COMPOSE_FILE)]
        result = _run([*command, *args], timeout=timeout, input=input, env=env)
        if check and result.returncode != 0:
            raise AssertionError(
                f"`{' '.join(command[:1] + list(args))}` exited {result.returncode}:\n"
                f"{result.stdout.decode(errors='replace')[-3000:]}\n{result.stderr.decode(errors='replace')[-3000:]}"
            )
        return result

    def use_image(self, image: str) -> str:
        """Points the env file's MAMMO_IMAGE_TAG at another image of this repository; returns the previous one."""
        previous, self.image = self.image, image
        lines = self.env_file.read_text().splitlines()
        tag = image.split(":", 1)[1]
        lines = [f"MAMMO_IMAGE_TAG={tag}" if line.startswith("MAMMO_IMAGE_TAG=") else line for line in lines]
        self.env_file.write_text("\n".join(lines) + "\n")
        return previous

    def manage(self, *args: str, input: bytes | None = None, check: bool = True):
        """`manage.py ...` inside the running web container."""
        return self.compose("exec", "-T", "web", "python", "manage.py", *args, input=input, check=check, timeout=300)

    def containers(self) -> list[dict]:
        ids = _run(
            ["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={self.project}"], timeout=60
        ).stdout.split()
        if not ids:
            return []
        return json.loads(_run(["docker", "inspect", *[i.decode() for i in ids]], timeout=60).stdout)

    def service_containers(self, service: str) -> list[dict]:
        return [c for c in self.containers() if c["Config"]["Labels"].get("com.docker.compose.service") == service]

    def wait_healthy(self, expected: dict[str, int], *, timeout: float = 420) -> None:
        """Until every expected service has that many running containers reported healthy by their health checks.
        Fails at once when a container exited or restarted (with its log)."""
        deadline = time.monotonic() + timeout
        seen: dict[str, list[str]] = {}
        while time.monotonic() < deadline:
            seen = {}
            for container in self.containers():
                service = container["Config"]["Labels"].get("com.docker.compose.service")
                state = container["State"]
                if state["Status"] in ("exited", "dead") or container["RestartCount"] > 0:
                    log = _run(["docker", "logs", "--tail", "60", container["Id"]], timeout=60)
                    raise AssertionError(
                        f"{container['Name']} {state['Status']} (exit {state.get('ExitCode')}, restarts "
                        f"{container['RestartCount']}):\n{(log.stdout + log.stderr).decode(errors='replace')}"
                    )
                seen.setdefault(service, []).append(state.get("Health", {}).get("Status", "no health check"))
            if all(seen.get(name, []).count("healthy") == count for name, count in expected.items()):
                return
            time.sleep(1)
        raise AssertionError(f"Not healthy after {timeout:.0f} s: expected {expected}, seen {seen}")

    def task_successes(self, container: dict) -> int:
        logs = _run(["docker", "logs", container["Id"]], timeout=60)
        return len(TASK_SUCCEEDED.findall((logs.stdout + logs.stderr).decode(errors="replace")))

    def leftovers(self) -> dict[str, list[str]]:
        label = f"label=com.docker.compose.project={self.project}"
        found = {
            "containers": _run(["docker", "ps", "-aq", "--filter", label], timeout=60).stdout.decode().split(),
            "volumes": _run(["docker", "volume", "ls", "-q", "--filter", label], timeout=60).stdout.decode().split(),
            "networks": _run(["docker", "network", "ls", "-q", "--filter", label], timeout=60).stdout.decode().split(),
        }
        # By name too: a volume or network created without labels would still carry the project's prefix.
        for kind in ("volume", "network"):
            names = _run(["docker", kind, "ls", "--format", "{{.Name}}"], timeout=60).stdout.decode().split()
            found[f"{kind}s"] += [n for n in names if re.match(rf"{re.escape(self.project)}[_-]", n)]
        return {kind: sorted(set(items)) for kind, items in found.items() if items}

    def save_logs(self, name: str = "compose-logs") -> None:
        if self.torn_down:
            return
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        result = self.compose("logs", "--no-color", "--timestamps", check=False, timeout=120)
        (ARTIFACTS / f"{name}.txt").write_bytes(result.stdout + result.stderr)

    def tear_down(self) -> None:
        """down -v --remove-orphans (containers, network, volumes), then this run's image."""
        if self.torn_down:
            return
        started = time.monotonic()
        self.compose("down", "-v", "--remove-orphans", "--timeout", "120", timeout=600)
        for image in reversed([self.image, *self.images_built]):  # newest first: an image is built on the one before
            remove_image_keeping_dependency_layer(image)
        self.timings["down_-v_s"] = time.monotonic() - started
        self.torn_down = True


def remove_image_keeping_dependency_layer(image: str) -> None:
    """Removes this run's image. With the legacy builder every build step is an image, and removing the final one
    removes its untagged parents too: so the step that installed requirements.txt (minutes to rebuild) is tagged
    DEPENDENCY_CACHE first and kept, and the one it replaces is removed when nothing else uses it. (BuildKit keeps
    its cache apart from images: there the history has no step ids and nothing needs keeping.)"""
    history = _run(["docker", "history", "--no-trunc", "--format", "{{.ID}}\t{{.CreatedBy}}", image], timeout=60)
    step = next(
        (line.split("\t", 1)[0] for line in history.stdout.decode().splitlines() if "pip install" in line),
        "<missing>",
    )
    if step != "<missing>":
        previous = _run(["docker", "image", "inspect", "--format", "{{.Id}}", DEPENDENCY_CACHE], timeout=60)
        _run(["docker", "tag", step, DEPENDENCY_CACHE], timeout=60)
        old = previous.stdout.decode().strip()
        if previous.returncode == 0 and old != step:
            _run(["docker", "rmi", old], timeout=120)  # refused while another image still builds on it: fine
    _run(["docker", "rmi", image], timeout=120)


def write_env_file(path: Path, **overrides: str) -> None:
    """docker/env.example, as an operator edits it: every KEY=value line kept unless overridden here; keys the
    example lacks are appended (so a key the compose file needs but the example forgets still shows up below)."""
    lines, done = [], set()
    for line in ENV_EXAMPLE.read_text().splitlines():
        key = line.split("=", 1)[0] if "=" in line and not line.lstrip().startswith("#") else None
        if key in overrides:
            lines.append(f"{key}={overrides[key]}")
            done.add(key)
        else:
            lines.append(line)
    lines += [f"{key}={value}" for key, value in overrides.items() if key not in done]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)


# --- HTTP as the TLS proxy forwards it -------------------------------------------------------------------------


class ProxiedClient:
    """Talks to the published port as the TLS-terminating proxy does: Host of the site, X-Forwarded-Proto: https.
    Cookies are kept by hand because the platform marks them Secure, which a cookie jar never sends over the
    plain-HTTP hop between proxy and container (the browser's side of the proxy is HTTPS)."""

    def __init__(self, port: int, *, token: str | None = None, https: bool = True):
        self.base = f"http://127.0.0.1:{port}"
        self.headers = {"Host": SITE}
        if https:
            self.headers["X-Forwarded-Proto"] = "https"
        if token:
            self.headers["Authorization"] = f"Token {token}"
        self.cookies: dict[str, str] = {}
        self.cookie_flags: dict[str, dict] = {}

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        response = requests.request(
            method, self.base + path, headers=headers, allow_redirects=False, timeout=120, **kwargs
        )
        for cookie in response.cookies:
            self.cookies[cookie.name] = cookie.value
            self.cookie_flags[cookie.name] = {
                "secure": cookie.secure,
                "httponly": cookie.has_nonstandard_attr("HttpOnly"),
            }
        return response

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.request("POST", path, **kwargs)


def wait_until(predicate, *, timeout: float, interval: float = 0.5, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"Timed out after {timeout:.0f} s waiting for {what or predicate.__name__}")


def upload(client: ProxiedClient, files: list[tuple[str, bytes]]) -> dict:
    response = client.post(
        "/api/studies/", files=[("files", (name, data, "application/dicom")) for name, data in files]
    )
    assert response.status_code == 201, response.text[:2000]
    body = response.json()
    assert [f["status"] for f in body["files"]] == ["accepted"] * len(files), body["files"]
    return body["study"]


def job_statuses(client: ProxiedClient, study_id: int) -> list[str]:
    response = client.get(f"/api/studies/{study_id}/")
    assert response.status_code == 200, response.text[:500]
    return [image["job_status"] for image in response.json()["images"]]


def real_size_mammogram() -> bytes:
    """Real size and format of a CBIS-DDSM file: 4,600 x 2,800, 16 bits stored, RLE Lossless (about 27 MB)."""
    return make_dicom(rows=4600, columns=2800, bits_stored=16, transfer_syntax=RLELossless)


def copy_of(data: bytes) -> bytes:
    """Another instance (new study, series and SOP instance UIDs) with the same pixels: no re-encoding."""
    return patch_dicom(
        data, SOPInstanceUID=generate_uid(), StudyInstanceUID=generate_uid(), SeriesInstanceUID=generate_uid()
    )


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
        stack.wait_healthy({"db": 1, "redis": 1, "web": 1, "worker": 1, "beat": 1})
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
    assert sorted(services) == ["beat", "db", "redis", "web", "worker"]
    for name, containers in services.items():
        for container in containers:
            host = container["HostConfig"]
            assert host["RestartPolicy"]["Name"] == "unless-stopped", name
            assert host["Memory"] > 0, f"{name} has no memory limit"
            assert container["Config"].get("Healthcheck", {}).get("Test"), f"{name} has no health check"
            assert host["LogConfig"]["Type"] == "json-file", name
    # The application containers run as the unprivileged user, without Linux capabilities.
    for name in ("web", "worker", "beat"):
        container = services[name][0]
        assert container["Config"]["User"] == "mammo", name
        assert container["HostConfig"]["CapDrop"] == ["ALL"], name
    # Each health check says what it tested (docker keeps the checks' output).
    said = {name: services[name][0]["State"]["Health"]["Log"][-1]["Output"] for name in ("web", "worker", "beat")}
    assert "/healthz" in said["web"]
    assert "consumes 'inference' and ran a ping task" in said["worker"]
    assert "is ticking" in said["beat"]


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
    assert refused.status_code == 200 and "sessionid" not in browser.cookies
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
    assert 0.0 <= prediction["probability"] <= 1.0 and prediction["label"] in ("benign", "malignant")
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
    stack.wait_healthy({"db": 1, "redis": 1, "web": 1, "worker": 2, "beat": 1})
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
    built = _run(
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
    new_id = _run(["docker", "image", "inspect", "--format", "{{.Id}}", new_image], timeout=60).stdout.decode().strip()
    for service in ("web", "worker", "beat"):
        assert [c["Image"] for c in stack.service_containers(service)] == [new_id], service
    remove_image_keeping_dependency_layer(old_image)  # only untags it: the new image is built on top of it

    # The new worker's first jobs load the model: stop the worker while they run. Its warm shutdown finishes them
    # (or hands them back); nothing fails. It held at most 2 (2 threads, prefetch 1): the third stays in Redis.
    wait_until(lambda: "running" in job_statuses(client, queued["id"]), timeout=300, interval=0.2, what="a job to run")
    stack.compose("stop", "worker", timeout=300)
    at_stop = job_statuses(client, queued["id"])
    assert "failed" not in at_stop and "queued" in at_stop, at_stop
    stopped_log = _run(["docker", "logs", stack.service_containers("worker")[0]["Id"]], timeout=60)
    assert b"warm shutdown" in (stopped_log.stdout + stopped_log.stderr).lower()

    # The whole stack goes down (containers and network removed, volumes kept) with that job still queued, and comes
    # back: the queue (Redis append-only file), the database and the files must survive.
    stack.save_logs("compose-logs-before-restart")
    stack.compose("down", timeout=600)
    assert stack.containers() == []
    restarted = time.monotonic()
    stack.compose("up", "-d", timeout=600)
    stack.wait_healthy({"db": 1, "redis": 1, "web": 1, "worker": 1, "beat": 1})
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
