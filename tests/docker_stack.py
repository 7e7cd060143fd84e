"""Driving docker/compose.yml from the tests as an operator would: the Compose CLI (v2 or v1), the Docker CLI for
inspection and clean-up, and HTTP as the TLS-terminating proxy forwards it. Used by tests/test_docker_stack.py."""

from __future__ import annotations

import json
import os
import re
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

REPO = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO / "docker" / "compose.yml"
OBJECTSTORE_COMPOSE_FILE = REPO / "docker" / "compose.objectstore.yml"  # the object store and a worker with no media
ENV_EXAMPLE = REPO / "docker" / "env.example"
STANDINS_SCRIPT = REPO.parent / "shared" / "tools" / "docker-standins" / "build.sh"
ARTIFACTS = REPO / "test-artifacts" / "docker-stack"
SITE = "mammo.test"  # the host name the TLS proxy serves
TASK_SUCCEEDED = re.compile(r"Task inference\.run_inference\[[^\]]+\] succeeded")  # ids: uuids, or outbox-N-M
DEPENDENCY_CACHE = "mammo-platform:build-cache-dependencies"


# --- Docker and Compose ----------------------------------------------------------------------------------------


def run_command(command: list[str], *, timeout: float, input: bytes | None = None, env: dict | None = None):
    return subprocess.run(command, capture_output=True, timeout=timeout, input=input, env=env, cwd=REPO)


def compose_command() -> list[str] | None:
    """Compose v2 (the docker CLI plugin) when present, else v1 (docker-compose); MAMMO_COMPOSE overrides."""
    if os.environ.get("MAMMO_COMPOSE"):
        return os.environ["MAMMO_COMPOSE"].split()
    if shutil.which("docker") and run_command(["docker", "compose", "version"], timeout=30).returncode == 0:
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
    info = run_command(["docker", "info", "--format", "{{.ServerVersion}}"], timeout=60)
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
    compose_files: tuple[Path, ...] = (COMPOSE_FILE,)

    def compose(self, *args: str, timeout: float = 600, input: bytes | None = None, check: bool = True):
        env = {**os.environ, "MAMMO_ENV_FILE": str(self.env_file)}
        files = [argument for path in self.compose_files for argument in ("-f", str(path))]
        command = [*self.compose_cmd, "-p", self.project, "--env-file", str(self.env_file), *files]
        result = run_command([*command, *args], timeout=timeout, input=input, env=env)
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
        ids = run_command(
            ["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={self.project}"], timeout=60
        ).stdout.split()
        if not ids:
            return []
        return json.loads(run_command(["docker", "inspect", *[i.decode() for i in ids]], timeout=60).stdout)

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
                    log = run_command(["docker", "logs", "--tail", "60", container["Id"]], timeout=60)
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
        logs = run_command(["docker", "logs", container["Id"]], timeout=60)
        return len(TASK_SUCCEEDED.findall((logs.stdout + logs.stderr).decode(errors="replace")))

    def leftovers(self) -> dict[str, list[str]]:
        label = f"label=com.docker.compose.project={self.project}"
        found = {
            "containers": run_command(["docker", "ps", "-aq", "--filter", label], timeout=60).stdout.decode().split(),
            "volumes": run_command(["docker", "volume", "ls", "-q", "--filter", label], timeout=60)
            .stdout.decode()
            .split(),
            "networks": run_command(["docker", "network", "ls", "-q", "--filter", label], timeout=60)
            .stdout.decode()
            .split(),
        }
        # By name too: a volume or network created without labels would still carry the project's prefix.
        for kind in ("volume", "network"):
            names = run_command(["docker", kind, "ls", "--format", "{{.Name}}"], timeout=60).stdout.decode().split()
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
    history = run_command(["docker", "history", "--no-trunc", "--format", "{{.ID}}\t{{.CreatedBy}}", image], timeout=60)
    step = next(
        (line.split("\t", 1)[0] for line in history.stdout.decode().splitlines() if "pip install" in line),
        "<missing>",
    )
    if step != "<missing>":
        previous = run_command(["docker", "image", "inspect", "--format", "{{.Id}}", DEPENDENCY_CACHE], timeout=60)
        run_command(["docker", "tag", step, DEPENDENCY_CACHE], timeout=60)
        old = previous.stdout.decode().strip()
        if previous.returncode == 0 and old != step:
            run_command(["docker", "rmi", old], timeout=120)  # refused while another image still builds on it: fine
    run_command(["docker", "rmi", image], timeout=120)


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
