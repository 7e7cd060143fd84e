"""Signs of life of worker processes.

Each Celery worker process runs one small thread that, every WORKER_HEARTBEAT_SECONDS, records that the process is
alive (a Worker row) and announces the beat (`worker_beat`), so that work it holds can be marked alive too (the
analysis jobs it runs: inference.serving.heartbeat). From these:
- work held by a process that stopped beating is known to be interrupted within WORKER_HEARTBEAT_TIMEOUT, and the
  outbox sweep (core.outbox) sends it again at once, instead of waiting for the broker's visibility timeout;
- a message delivered twice never runs the same work twice at the same time: work whose process is alive is left
  to it;
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
from django.dispatch import Signal
from django.utils import timezone

from core.models import Worker

logger = logging.getLogger(__name__)

# Sent with name= (this process) and now= at every heartbeat, from the heartbeat thread.
worker_beat = Signal()

_started_in_pid: int | None = None
_stop = threading.Event()
_lock = threading.Lock()


def worker_name() -> str:
    """This process, as work records who runs it."""
    return f"{socket.gethostname()}:{os.getpid()}"


def heartbeat_start() -> None:
    """Start this process's heartbeat thread (once per process; a forked child starts its own)."""
    global _started_in_pid
    with _lock:
        if _started_in_pid == os.getpid():
            return
        _started_in_pid = os.getpid()
        _stop.clear()
        thread = threading.Thread(target=_beat_forever, name="worker-heartbeat", daemon=True)
        thread.start()


def heartbeat_stop() -> None:
    _stop.set()


def heartbeat_beat() -> None:
    """One heartbeat: this process is alive, and so is the work it holds."""
    now = timezone.now()
    name = worker_name()
    Worker.objects.update_or_create(
        name=name, defaults={"last_seen": now}, create_defaults={"started_at": now, "last_seen": now}
    )
    worker_beat.send(sender=Worker, name=name, now=now)


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
            _stop.wait(settings.WORKER_HEARTBEAT_SECONDS)
    finally:
        connection.close()


def alive_since() -> timezone.datetime:
    """Processes seen after this moment are alive."""
    return timezone.now() - timedelta(seconds=settings.WORKER_HEARTBEAT_TIMEOUT)


def workers_alive() -> list[Worker]:
    """Workers seen within the heartbeat timeout."""
    return list(Worker.objects.filter(last_seen__gte=alive_since()))


def worker_is_alive(name: str) -> bool:
    return bool(name) and Worker.objects.filter(name=name, last_seen__gte=alive_since()).exists()


def workers_forget_dead(*, older_than_seconds: int = 24 * 3600) -> int:
    """Drop Worker rows not seen for a day (a process per restart would otherwise pile up)."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    deleted, _ = Worker.objects.filter(last_seen__lt=cutoff).delete()
    return deleted
