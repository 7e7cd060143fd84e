"""Celery entry points: ids in, call a service, handle retries. No business rules here.

TensorFlow is imported lazily (inference.serving.runtime) inside the worker process that runs the task, never in a
parent that forks afterwards; the model is then kept for the life of that process.
"""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_process_init, worker_ready, worker_shutting_down
from django.db import DatabaseError, InterfaceError, OperationalError

from core.workers import heartbeat_start, heartbeat_stop
from inference.serving.jobs import (
    TransientInferenceError,
    inference_job_fail,
    inference_job_transient_failure,
)
from inference.serving.pipeline import inference_job_run

logger = logging.getLogger(__name__)
# Database errors only (the job's row cannot be updated): retried by the task without touching the job.
MAX_DATABASE_RETRIES = 5


@shared_task(
    bind=True,
    name="inference.run_inference",
    acks_late=True,  # acknowledged after the work: a worker that dies mid-task leaves the message to be redelivered
    reject_on_worker_lost=True,
    max_retries=None,  # the limits are the job's own (transient retries and interruptions, counted on its row)
)
def run_inference(self, *, job_id: int) -> None:
    heartbeat_start()  # idempotent; also started when the worker is ready (below)
    countdown = 2 ** min(self.request.retries + 1, 6)  # 2, 4, 8 ... 64 seconds
    try:
        inference_job_run(job_id=job_id)
    except TransientInferenceError as exc:
        if inference_job_transient_failure(job_id, reason=str(exc)):
            raise self.retry(exc=exc, countdown=countdown) from exc
    except (OperationalError, InterfaceError) as exc:
        if self.request.retries < MAX_DATABASE_RETRIES:
            raise self.retry(exc=exc, countdown=countdown) from exc
        logger.error("Job %s: database unavailable through %s retries: %s", job_id, self.request.retries, exc)
        try:
            inference_job_fail(
                job_id,
                message="The analysis could not be completed (the database was unavailable). You can retry it.",
                detail=repr(exc),
            )
        except DatabaseError:
            logger.exception("Job %s: could not record the failure; the sweep will send it again", job_id)


@worker_ready.connect
def _worker_ready(**_kwargs) -> None:
    """Solo and threads pools run tasks in this process: it beats from the start, busy or idle."""
    heartbeat_start()


@worker_shutting_down.connect
def _worker_shutting_down(**_kwargs) -> None:
    heartbeat_stop()


@worker_process_init.connect
def _prepare_pool_process(**_kwargs) -> None:
    """In each prefork pool process: fresh database connections (never the parent's), its own heartbeat, then the
    active model loaded so the first image does not wait for it. (Solo and threads pools load it on the first
    task instead.)"""
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        connection.close()
    heartbeat_start()
    from inference.models import ModelVersion
    from inference.serving.runtime import loaded_model_get

    try:
        version = ModelVersion.objects.malignancy().active().first()
        if version is not None:
            loaded_model_get(version)
    except Exception:  # noqa: BLE001  (the task will report a load failure on the job itself)
        logger.exception("Could not preload the active model")
    finally:
        connections.close_all()


@shared_task(name="inference.model_monitoring", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def model_monitoring(*, model_ids: list[int] | None = None, end: str | None = None, via: str = "beat") -> dict:
    """The models' monitoring (inference.monitoring.compute.monitoring_run): daily by Celery beat for the previous
    days, and on demand (through the outbox) up to today. Idempotent: a day's row is replaced, a rule trips once."""
    from datetime import date

    from inference.monitoring.compute import monitoring_run

    return monitoring_run(model_ids=model_ids, end=date.fromisoformat(end) if end else None, via=via)
