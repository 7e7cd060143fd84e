"""The Celery application. Configuration lives in Django settings under the CELERY_ namespace."""

import ctypes
import multiprocessing
import os
import re
import signal
import sys
import tempfile
from pathlib import Path

from celery import Celery
from celery.signals import beat_embedded_init

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


PR_SET_PDEATHSIG = 1  # linux/prctl.h


@beat_embedded_init.connect
def beat_dies_with_its_worker(sender=None, **kwargs) -> None:
    """Beat embedded in a worker (`worker --beat`, as run.sh starts it) is a child process of the worker. When the
    worker stops it sends beat SIGTERM; when the worker is killed (SIGKILL, out of memory, a crash) nobody would,
    and the orphaned beat would go on sending the sweep beside the next worker's own beat. The kernel sends it the
    same SIGTERM the moment the worker dies (PR_SET_PDEATHSIG; Celery forks beat from the worker's main thread,
    which lives as long as the worker). Linux only; elsewhere beat keeps Celery's behaviour."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        return
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:  # the worker died before the request was made
        os.kill(os.getpid(), signal.SIGTERM)
