"""Past one host, in the deployment a hospital runs: docker/compose.yml with docker/compose.objectstore.yml, the
media store in an S3-compatible object store (MEDIA_STORAGE=s3), and an upload analysed by `remote-worker`, a worker
container with NO media volume (as on a second host): it reads the image and writes the heatmap through the object
store only, and the web container serves that heatmap from there.

The object store is moto's S3 server in a container built on the platform's base image (docker/objectstore/): an
in-memory EMULATOR of S3, which is what this test can run here (Docker Hub cannot be reached, and no real
S3-compatible server installs from PyPI or Debian). The stack is started with only what this needs (db, redis,
objectstore, web, remote-worker), under a project name and ports of its own, and removed at the end, volumes and
images included. Needs Docker as tests/test_docker_stack.py does (skipped with the reason where it cannot run).
"""

from __future__ import annotations

import os
import secrets
import time

import pytest

from tests.docker_stack import (
    COMPOSE_FILE,
    OBJECTSTORE_COMPOSE_FILE,
    ProxiedClient,
    Stack,
    compose_command,
    free_port,
    job_statuses,
    real_size_mammogram,
    require_docker,
    run_command,
    upload,
    wait_until,
    write_env_file,
)

pytestmark = pytest.mark.docker

PASSWORD = "objectstore-test-password-4k2m"
BUCKET = "mammo-media"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    require_docker()
    run_id = f"{os.getpid()}-{secrets.token_hex(2)}"
    folder = tmp_path_factory.mktemp("docker-objectstore")
    stack = Stack(
        project=f"mammo-s3-{run_id}",
        env_file=folder / "stack.env",
        port=free_port(),
        image=f"mammo-platform:s3-{run_id}",
        compose_cmd=compose_command(),
        compose_files=(COMPOSE_FILE, OBJECTSTORE_COMPOSE_FILE),
    )
    password = secrets.token_urlsafe(24)
    write_env_file(
        stack.env_file,
        COMPOSE_PROJECT_NAME=stack.project,
        MAMMO_IMAGE_TAG=stack.image.split(":", 1)[1],
        SECRET_KEY=secrets.token_urlsafe(50),
        POSTGRES_PASSWORD=password,
        DATABASE_URL=f"postgres://mammo:{password}@db:5432/mammo",
        ALLOWED_HOSTS="mammo.test",
        CSRF_TRUSTED_ORIGINS="https://mammo.test",
        WEB_PUBLISH=f"127.0.0.1:{stack.port}",
        DICOM_PUBLISH=f"127.0.0.1:{free_port()}",
        WEB_CONCURRENCY="2",
        WORKER_CPUS=str(min(2, os.cpu_count() or 1)),
        HEALTHCHECK_INTERVAL="3s",
        MEDIA_STORAGE="s3",
        S3_ENDPOINT_URL="http://objectstore:5000",
        S3_BUCKET=BUCKET,
        S3_ACCESS_KEY_ID=secrets.token_hex(8),  # the emulator takes any; a real store's come from its operator
        S3_SECRET_ACCESS_KEY=secrets.token_urlsafe(24),
    )
    objectstore_image = f"mammo-objectstore:{stack.image.split(':', 1)[1]}"
    try:
        stack.compose("build", "web", "objectstore", timeout=1800)
        stack.compose("up", "-d", "remote-worker", timeout=600)  # and what it depends on: db, redis, objectstore, web
        stack.wait_healthy({"db": 1, "redis": 1, "objectstore": 1, "web": 1, "remote-worker": 1})
        yield stack
    finally:
        try:
            stack.save_logs("compose-logs-objectstore")
        finally:
            stack.tear_down()
            run_command(["docker", "rmi", objectstore_image], timeout=120)


def test_a_worker_with_no_media_volume_analyses_an_upload_through_the_object_store(stack):
    (worker,) = stack.service_containers("remote-worker")
    assert not [m for m in worker["Mounts"] if m["Destination"] == "/data/media"], worker["Mounts"]
    assert "MEDIA_STORAGE=s3" in worker["Config"]["Env"]
    assert stack.service_containers("worker") == []  # the stack's own worker (with the media volume) is not running

    created = stack.manage("adduser", "rad", "--role", "radiologist", input=f"{PASSWORD}\n".encode())
    assert b"Created rad" in created.stdout, created.stdout + created.stderr
    token = ProxiedClient(stack.port).post("/api/auth/token/", data={"username": "rad", "password": PASSWORD})
    client = ProxiedClient(stack.port, token=token.json()["token"])
    started = time.monotonic()
    study = upload(client, [("R_MLO.dcm", real_size_mammogram())])

    def finished():
        statuses = job_statuses(client, study["id"])
        return statuses if set(statuses) <= {"succeeded", "failed"} else None

    statuses = wait_until(finished, timeout=300, what="the remote worker to analyse the upload")
    assert statuses == ["succeeded"], client.get(f"/api/studies/{study['id']}/").text[:2000]
    stack.timings["objectstore_upload_to_prediction_s"] = time.monotonic() - started
    assert stack.task_successes(worker) == 1

    # The web container serves the heatmap the remote worker wrote, from the object store.
    (image,) = client.get(f"/api/studies/{study['id']}/").json()["images"]
    heatmap = client.get(f"/api/images/{image['id']}/heatmap/")
    assert heatmap.status_code == 200 and heatmap.content.startswith(b"\x89PNG\r\n\x1a\n")
    keys = stack.compose("exec", "-T", "objectstore", "python", "/objectstore.py", "list").stdout.decode().split()
    for folder in ("originals/", "previews/", "working/", "viewer/", "heatmaps/"):
        assert any(key.startswith(folder) for key in keys), (folder, keys)
    # Nothing of the image is on the web container's media volume but its (empty) incoming folder.
    on_disk = stack.compose("exec", "-T", "web", "find", "/data/media", "-type", "f").stdout.decode().split()
    assert on_disk == [], on_disk
