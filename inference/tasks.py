"""Celery entry points: ids in, call a service, handle retries. No business rules here.

TensorFlow is imported lazily (inference.serving.runtime) inside the worker process that runs the task, never in a
parent that forks afterwards; the model is then kept for the life of that process.
"""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_process_init
from django.db import DatabaseError, InterfaceError, OperationalError

from inference.serving.jobs import TransientInferenceError, inference_job_fail, inference_jobs_requeue_stale
from inference.serving.pipeline import inference_job_run

logger = logging.getLogger(__name__)
MAX_RETRIES = 5


@shared_task(
    bind=True,
    name="inference.run_inference",
    acks_late=True,  # acknowledged after the work: a worker that dies mid-task leaves the message to be redelivered
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
)
def run_inference(self, *, job_id: int) -> None:
    try:
        inference_job_run(job_id=job_id)
    except (TransientInferenceError, OperationalError, InterfaceError) as exc:
        if self.request.retries >= MAX_RETRIES:
            logger.error("Job %s: giving up after %s retries: %s", job_id, self.request.retries, exc)
            try:
                inference_job_fail(
                    job_id,
                    message="The analysis could not be completed (storage or database unavailable). You can retry it.",
                    detail=repr(exc),
                )
            except DatabaseError:
                logger.exception("Job %s: could not record the failure", job_id)
            return
        # Exponential backoff: 2, 4, 8, 16, 32 seconds.
        raise self.retry(exc=exc, countdown=2 ** (self.request.retries + 1)) from exc


@shared_task(name="inference.requeue_stale_jobs", ignore_result=True)
def requeue_stale_jobs() -> list[int]:
    """Run by Celery beat every settings.INFERENCE_SWEEP_SECONDS (also `manage.py requeue_stale_jobs`)."""
    from django.conf import settings

    return inference_jobs_requeue_stale(older_than_seconds=settings.INFERENCE_STALE_SECONDS)


@worker_process_init.connect
def _prepare_pool_process(**_kwargs) -> None:
    """In each pool process: fresh database connections (never the parent's), then load the active model so the
    first image does not wait for it. (The solo pool loads it on the first task instead.)"""
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        connection.close()
    from inference.models import ModelVersion
    from inference.serving.runtime import loaded_model_get

    try:
        version = ModelVersion.objects.filter(is_active=True).first()
        if version is not None:
            loaded_model_get(version)
    except Exception:  # noqa: BLE001  (the task will report a load failure on the job itself)
        logger.exception("Could not preload the active model")
    finally:
        connections.close_all()
