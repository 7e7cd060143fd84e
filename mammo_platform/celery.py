"""The Celery application. Configuration lives in Django settings under the CELERY_ namespace."""

import os
import re
import tempfile
from pathlib import Path

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mammo_platform.settings")

app = Celery("mammo_platform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Written by the ping task, read by the container health check that sent it (both run in the worker's container).
HEALTH_PING_FILE = Path(tempfile.gettempdir()) / "mammo-worker-health-ping"
HEALTH_PING_TASK = "mammo_platform.health_ping"


@app.task(name=HEALTH_PING_TASK, ignore_result=True)
def health_ping(*, token: str) -> None:
    """Sent by docker/healthcheck.py to this worker's own queue: writing the token back proves that the worker
    takes tasks from the broker and runs them in its pool (not only that its main process answers)."""
    if not re.fullmatch(r"[0-9a-f]{16,64}", token):
        raise ValueError("health_ping: the token must be 16 to 64 hexadecimal characters")
    partial = HEALTH_PING_FILE.with_name(HEALTH_PING_FILE.name + ".partial")
    partial.write_text(token)
    partial.replace(HEALTH_PING_FILE)  # atomic: the check never reads half a token
