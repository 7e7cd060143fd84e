"""Inference jobs: one row per image and model version, with one status flow.

Every status change goes through inference_job_transition(): it changes the row (InferenceJob.transition, on a
row locked by the caller), writes the audit row, and announces the change (inference.serving.signals), which is how
the study learns that its analysis moved on (cases.studies.receivers). Tasks and pages call the services here;
the analysis itself is inference.serving.pipeline.

Nothing is lost and nothing runs twice:
- a job is sent to the broker only after its row is committed; a broker that is down does not fail the upload
  (the job stays queued, unsent, and the sweep sends it when the broker is back);
- a job knows which worker runs it and that worker's heartbeat (inference.serving.heartbeat): a job whose worker
  died is sent again by the sweep within INFERENCE_HEARTBEAT_TIMEOUT + INFERENCE_SWEEP_SECONDS, and a duplicate
  message for a job whose worker is alive does nothing;
- a worker dying while it runs a job (an interruption) and a transient error (storage briefly unavailable) are
  counted apart, each with its own limit and its own message.
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


# Columns the analysis of an image never reads, left out when its job is loaded: the image's DICOM attributes and
# the model's card and metrics (tens of kilobytes of JSON each; the card is read, once per worker process, when the
# model is loaded).
ANALYSIS_DEFERRED = ("image__dicom_attributes", "model_version__card", "model_version__metrics")


class TransientInferenceError(Exception):
    """Worth retrying (storage or database briefly unavailable)."""


def _enqueue(job_id: int) -> bool:
    """Send the job's message. A broker that cannot be reached is logged, not raised: the job stays queued with
    no enqueued_at, and the sweep sends it once the broker answers again."""
    try:
        # By name: the task (inference.tasks.run_inference) is the entry point that calls into this module.
        current_app.send_task("inference.run_inference", kwargs={"job_id": job_id})
    except Exception as exc:  # noqa: BLE001  (any broker or network failure)
        logger.warning("Job %s could not be sent to the broker (%s); the sweep will send it later.", job_id, exc)
        return False
    InferenceJob.objects.filter(pk=job_id).update(enqueued_at=timezone.now())
    return True


def job_enqueue_on_commit(job_id: int) -> None:
    # robust: whatever happens while sending never undoes or fails the committed work that queued the job.
    transaction.on_commit(lambda: _enqueue(job_id), robust=True)


def inference_job_transition(
    *,
    job: InferenceJob,
    status: str,
    error_message: str = "",
    error_detail: str = "",
    actor=None,
    also_save: tuple[str, ...] = (),
) -> InferenceJob:
    """The one place a job's status changes. Call inside a transaction, on a row locked with select_for_update();
    `also_save` names other fields the caller changed on the row, written in the same UPDATE.

    Failures and retries are audited here (a successful analysis is audited with its prediction, by the pipeline);
    the study follows through job_status_changed."""
    previous = job.status
    job.transition(status, error_message=error_message, error_detail=error_detail, also_save=also_save)
    details = {
        "image_id": job.image_id,
        "model_version_id": job.model_version_id,
        "attempts": job.attempts,
        "interruptions": job.interruptions,
        "transient_retries": job.transient_retries,
    }
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


def inference_jobs_requeue_stale(*, older_than_seconds: int | None = None) -> list[int]:
    """The sweep (Celery beat, every INFERENCE_SWEEP_SECONDS; also `manage.py requeue_stale_jobs`): send again

    - running jobs whose worker stopped beating for INFERENCE_HEARTBEAT_TIMEOUT (killed, out of memory); the next
      worker takes them over (inference_job_claim);
    - queued jobs whose message never reached the broker (it was down when they were queued);
    - queued jobs waiting longer than INFERENCE_QUEUED_GRACE_SECONDS while the broker's queue is empty (their
      messages were lost with the broker's data), or longer than `older_than_seconds`
      (INFERENCE_STALE_SECONDS) in any case.

    Safe because tasks are idempotent and a job whose worker is alive is never taken from it. A job sent again is
    not sent again within the heartbeat timeout (requeued_at), so a sweep while every worker is down does not pile
    up copies. Returns the job ids."""
    now = timezone.now()
    stale_after = older_than_seconds if older_than_seconds is not None else settings.INFERENCE_STALE_SECONDS
    heartbeat_cutoff = now - timedelta(seconds=settings.INFERENCE_HEARTBEAT_TIMEOUT)
    grace_cutoff = now - timedelta(seconds=settings.INFERENCE_QUEUED_GRACE_SECONDS)
    stale_cutoff = now - timedelta(seconds=stale_after)
    queued_lost = Q(status=Status.QUEUED, queued_at__lt=stale_cutoff) | Q(
        status=Status.QUEUED, enqueued_at__isnull=True, queued_at__lt=now - timedelta(seconds=5)
    )
    if InferenceJob.objects.filter(status=Status.QUEUED, queued_at__lt=grace_cutoff).exists() and _queue_empty():
        queued_lost |= Q(status=Status.QUEUED, queued_at__lt=grace_cutoff)
    dead = Q(status=Status.RUNNING) & (Q(heartbeat_at__lt=heartbeat_cutoff) | Q(heartbeat_at__isnull=True))
    candidates = InferenceJob.objects.filter(queued_lost | dead).filter(
        Q(requeued_at__isnull=True) | Q(requeued_at__lt=heartbeat_cutoff)
    )
    ids = list(candidates.values_list("pk", flat=True))
    if ids:
        InferenceJob.objects.filter(pk__in=ids).update(requeued_at=now)
        logger.warning("Sending %s analysis job(s) again (worker stopped or message lost): %s", len(ids), ids)
    for job_id in ids:
        _enqueue(job_id)
    return ids


def _queue_empty() -> bool:
    """Whether the broker's queue holds no message (False when that cannot be told)."""
    try:
        with current_app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1)
            declared = conn.default_channel.queue_declare(queue=settings.CELERY_TASK_DEFAULT_QUEUE, passive=True)
            return declared.message_count == 0
    except Exception as exc:  # noqa: BLE001  (broker away or queue not declared yet)
        logger.info("Could not count the broker's queue: %s", exc)
        return False


@transaction.atomic
def inference_job_retry(*, job: InferenceJob) -> InferenceJob:
    job = InferenceJob.objects.select_for_update().select_related("image").get(pk=job.pk)
    if job.status != Status.FAILED:
        raise ApplicationError(f"Only a failed analysis can be retried (this one is {job.get_status_display()}).")
    active = ModelVersion.objects.filter(is_active=True).first()
    if job.model_version_id is not None and (active is None or active.pk != job.model_version_id):
        raise ApplicationError("The model of this analysis is no longer active; it cannot be retried.")
    job.interruptions = job.transient_retries = 0
    inference_job_transition(job=job, status=Status.QUEUED, also_save=("interruptions", "transient_retries"))
    job_enqueue_on_commit(job.pk)
    return job


def inference_job_claim(job_id: int, *, worker: str) -> InferenceJob | None:
    """Lock the job and mark it running on `worker`; None when there is nothing to do: finished, waiting, or
    running on a worker that is alive (a duplicate message). A job still marked running whose worker stopped
    beating was interrupted: it is taken over, unless that keeps happening (an image that kills the worker every
    time must not loop forever)."""
    with transaction.atomic():
        job = (
            InferenceJob.objects.select_for_update(of=("self",))
            .select_related("image", "model_version")
            .defer(*ANALYSIS_DEFERRED)
            .filter(pk=job_id)
            .first()
        )
        if job is None or job.status not in (Status.QUEUED, Status.RUNNING):
            return None
        if job.status == Status.RUNNING and job.worker != worker:
            cutoff = timezone.now() - timedelta(seconds=settings.INFERENCE_HEARTBEAT_TIMEOUT)
            if job.heartbeat_at is not None and job.heartbeat_at >= cutoff:
                return None  # its worker is alive and running it
            job.interruptions += 1
            if job.interruptions >= settings.INFERENCE_MAX_ATTEMPTS:
                inference_job_transition(
                    job=job,
                    status=Status.FAILED,
                    error_message=f"The analysis was interrupted {job.interruptions} times (the worker stopped while "
                    "processing this image). An engineer should look at it; you can retry it.",
                    error_detail=f"Gave up after {job.interruptions} interrupted attempts (last worker {job.worker}).",
                    also_save=("interruptions",),
                )
                return None
        job.worker = worker
        inference_job_transition(job=job, status=Status.RUNNING, also_save=("worker", "interruptions"))
        return job


def inference_job_transient_failure(job_id: int, *, reason: str) -> bool:
    """A transient error (storage briefly unavailable) stopped the running job: put it back in the queue for the
    task's retry and count it, or fail it once INFERENCE_MAX_TRANSIENT_RETRIES is reached. Returns whether the
    task should retry."""
    with transaction.atomic():
        job = InferenceJob.objects.select_for_update(of=("self",)).select_related("image").get(pk=job_id)
        if job.status != Status.RUNNING:
            return False
        if job.transient_retries >= settings.INFERENCE_MAX_TRANSIENT_RETRIES:
            inference_job_transition(
                job=job,
                status=Status.FAILED,
                error_message="The analysis could not be completed: the image store or the database was unavailable "
                f"through {job.transient_retries + 1} tries. You can retry it once they are back.",
                error_detail=reason,
            )
            return False
        job.transient_retries += 1
        inference_job_transition(
            job=job,
            status=Status.QUEUED,
            error_message=f"Waiting to retry: {reason}"[:500],
            error_detail=reason,
            also_save=("transient_retries",),
        )
        return True


def inference_job_fail(job_id: int, *, message: str, detail: str) -> None:
    with transaction.atomic():
        job = InferenceJob.objects.select_for_update(of=("self",)).select_related("image").get(pk=job_id)
        if job.status != Status.RUNNING:
            return
        inference_job_transition(job=job, status=Status.FAILED, error_message=message, error_detail=detail)
