"""Signs of life of analysis workers.

Each worker process runs one small thread that, every INFERENCE_HEARTBEAT_SECONDS, records that the process is
alive (a Worker row) and touches the jobs it is running (InferenceJob.heartbeat_at). From these:
- a job whose worker stopped beating is known to be interrupted within INFERENCE_HEARTBEAT_TIMEOUT, and the sweep
  (inference.serving.jobs.inference_jobs_requeue_stale) sends it again at once, instead of waiting for the
  broker's visibility timeout;
- a message delivered twice never runs a job twice at the same time: a job whose worker is alive is left to it;
- the health check and the study page can say whether any worker is alive.

The thread uses its own database connection and never raises: a database that is briefly away only makes
heartbeats late.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection
from django.utils import timezone

from inference.models import InferenceJob, Worker

logger = logging.getLogger(__name__)

_started_in_pid: int | None = None
_stop = threading.Event()
_lock = threading.Lock()


def worker_name() -> str:
    """This process, as jobs record who runs them."""
    return f"{socket.gethostname()}:{os.getpid()}"


def heartbeat_start() -> None:
    """Start this process's heartbeat thread (once per process; a forked child starts its own)."""
    global _started_in_pid
    with _lock:
        if _started_in_pid == os.getpid():
            return
        _started_in_pid = os.getpid()
        _stop.clear()
        thread = threading.Thread(target=_beat_forever, name="inference-heartbeat", daemon=True)
        thread.start()


def heartbeat_stop() -> None:
    _stop.set()


def heartbeat_beat() -> None:
    """One heartbeat: this process is alive, and so are the jobs it runs."""
    now = timezone.now()
    name = worker_name()
    Worker.objects.update_or_create(
        name=name, defaults={"last_seen": now}, create_defaults={"started_at": now, "last_seen": now}
    )
    InferenceJob.objects.filter(worker=name, status=InferenceJob.Status.RUNNING).update(heartbeat_at=now)


def _beat_forever() -> None:
    try:
        while not _stop.is_set():
            try:
                close_old_connections()
                heartbeat_beat()
            except DatabaseError as exc:
                logger.warning("Heartbeat not recorded (database unavailable): %s", exc)
            except Exception:  # noqa: BLE001  (the heartbeat must never stop the worker)
                logger.exception("Heartbeat failed")
            _stop.wait(settings.INFERENCE_HEARTBEAT_SECONDS)
    finally:
        connection.close()


def workers_alive() -> list[Worker]:
    """Workers seen within the heartbeat timeout."""
    cutoff = timezone.now() - timedelta(seconds=settings.INFERENCE_HEARTBEAT_TIMEOUT)
    return list(Worker.objects.filter(last_seen__gte=cutoff))


def workers_forget_dead(*, older_than_seconds: int = 24 * 3600) -> int:
    """Drop Worker rows not seen for a day (a process per restart would otherwise pile up)."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    deleted, _ = Worker.objects.filter(last_seen__lt=cutoff).delete()
    return deleted
