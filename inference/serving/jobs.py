"""Inference jobs: one row per image and model version, with one status flow.

Every status change goes through inference_job_transition(): it changes the row (InferenceJob.transition, on a
row locked by the caller), writes the audit row, and announces the change (inference.serving.signals), which is how
the study learns that its analysis moved on (cases.studies.receivers). Tasks and pages call the services here;
the analysis itself is inference.serving.pipeline.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.services import audit_record
from inference.models import InferenceJob, ModelVersion
from inference.serving.signals import job_status_changed
from mammo_platform.errors import ApplicationError

logger = logging.getLogger(__name__)
Status = InferenceJob.Status


class TransientInferenceError(Exception):
    """Worth retrying (storage or database briefly unavailable)."""


def _enqueue(job_id: int) -> None:
    # By name: the task (inference.tasks.run_inference) is the entry point that calls into this module.
    current_app.send_task("inference.run_inference", kwargs={"job_id": job_id})


def job_enqueue_on_commit(job_id: int) -> None:
    transaction.on_commit(lambda: _enqueue(job_id))


def inference_job_transition(
    *, job: InferenceJob, status: str, error_message: str = "", error_detail: str = "", actor=None
) -> InferenceJob:
    """The one place a job's status changes. Call inside a transaction, on a row locked with select_for_update().

    Failures and retries are audited here (a successful analysis is audited with its prediction, by the pipeline);
    the study follows through job_status_changed."""
    previous = job.status
    job.transition(status, error_message=error_message, error_detail=error_detail)
    details = {"image_id": job.image_id, "model_version_id": job.model_version_id, "attempts": job.attempts}
    if status == Status.FAILED:
        audit_record(
            action="job.failed",
            actor=actor,
            obj=job,
            study_id=job.image.study_id,
            details={**details, "message": error_message, "detail": error_detail[-2000:]},
        )
    elif status == Status.QUEUED and previous == Status.FAILED:
        audit_record(action="job.retried", actor=actor, obj=job, study_id=job.image.study_id, details=details)
    job_status_changed.send(sender=InferenceJob, job=job, previous=previous)
    return job


def inference_jobs_create(*, images) -> list[InferenceJob]:
    """One job per image for the active model, queued after the caller's transaction commits; with no active
    model the jobs wait (and are queued when a model is activated)."""
    active = ModelVersion.objects.filter(is_active=True).first()
    jobs = []
    for image in images:
        if active is None:
            job, _ = InferenceJob.objects.get_or_create(
                image=image,
                model_version=None,
                defaults={
                    "status": Status.WAITING_FOR_MODEL,
                    "error_message": "No active model: analysis starts when an administrator activates one.",
                },
            )
        else:
            job, created = InferenceJob.objects.get_or_create(
                image=image, model_version=active, defaults={"status": Status.QUEUED, "queued_at": timezone.now()}
            )
            if created:
                job_enqueue_on_commit(job.pk)
        jobs.append(job)
    return jobs


def inference_jobs_requeue_stale(*, older_than_seconds: int) -> list[int]:
    """Send again the jobs that are queued or running but have not moved for a while (a message lost with a
    broker restore, or a worker that vanished). Safe because tasks are idempotent. A job sent again is not sent
    again before another `older_than_seconds` (its `requeued_at`), so a sweep that runs while every worker is
    down does not pile up copies. Returns the job ids."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=older_than_seconds)
    stale = InferenceJob.objects.filter(
        Q(status=Status.QUEUED, queued_at__lt=cutoff) | Q(status=Status.RUNNING, started_at__lt=cutoff),
        Q(requeued_at__isnull=True) | Q(requeued_at__lt=cutoff),
    )
    ids = list(stale.values_list("pk", flat=True))
    if ids:
        InferenceJob.objects.filter(pk__in=ids).update(requeued_at=now)
        logger.warning("Requeued %s stale analysis job(s): %s", len(ids), ids)
    for job_id in ids:
        _enqueue(job_id)
    return ids


@transaction.atomic
def inference_job_retry(*, job: InferenceJob) -> InferenceJob:
    job = InferenceJob.objects.select_for_update().select_related("image").get(pk=job.pk)
    if job.status != Status.FAILED:
        raise ApplicationError(f"Only a failed analysis can be retried (this one is {job.get_status_display()}).")
    active = ModelVersion.objects.filter(is_active=True).first()
    if job.model_version_id is not None and (active is None or active.pk != job.model_version_id):
        raise ApplicationError("The model of this analysis is no longer active; it cannot be retried.")
    inference_job_transition(job=job, status=Status.QUEUED)
    job_enqueue_on_commit(job.pk)
    return job


def inference_job_claim(job_id: int) -> InferenceJob | None:
    """Lock the job and mark it running; None when there is nothing to do (already finished, or not queued)."""
    with transaction.atomic():
        job = (
            InferenceJob.objects.select_for_update(of=("self",))
            .select_related("image", "model_version")
            .filter(pk=job_id)
            .first()
        )
        if job is None or job.status not in (Status.QUEUED, Status.RUNNING):
            # Finished, waiting or deleted: a repeated or stale message does nothing.
            return None
        # RUNNING here means the worker that ran it died before finishing (its message came back): take it over,
        # unless that keeps happening (an image that kills the worker every time must not loop forever).
        if job.status == Status.RUNNING and job.attempts >= settings.INFERENCE_MAX_ATTEMPTS:
            inference_job_transition(
                job=job,
                status=Status.FAILED,
                error_message=f"The analysis was interrupted {job.attempts} times (the worker stopped while "
                "processing this image). An engineer should look at it; you can retry it.",
                error_detail=f"Gave up after {job.attempts} interrupted attempts.",
            )
            return None
        inference_job_transition(job=job, status=Status.RUNNING)
        return job


def inference_job_fail(job_id: int, *, message: str, detail: str) -> None:
    with transaction.atomic():
        job = InferenceJob.objects.select_for_update(of=("self",)).select_related("image").get(pk=job_id)
        if job.status != Status.RUNNING:
            return
        inference_job_transition(job=job, status=Status.FAILED, error_message=message, error_detail=detail)
