"""Inference jobs: one row per image and model version, with one status flow.

Every status change goes through inference_job_transition(): it changes the row (InferenceJob.transition, on a
row locked by the caller), writes the audit row, and announces the change (inference.serving.signals), which is how
the study learns that its analysis moved on (cases.studies.receivers). Tasks and pages call the services here;
the analysis itself is inference.serving.pipeline.

Nothing is lost and nothing runs twice:
- a job is asked for through the outbox (core.outbox), in the transaction that creates or retries it: it reaches
  the broker after the commit, and a broker that is down does not fail the upload (the outbox sweep sends it when
  the broker is back);
- a job knows which worker runs it and that worker's heartbeat (inference.serving.heartbeat): a job whose worker
  died is sent again by the outbox sweep within WORKER_HEARTBEAT_TIMEOUT + OUTBOX_SWEEP_SECONDS, and a duplicate
  message for a job whose worker is alive does nothing;
- a worker dying while it runs a job (an interruption) and a transient error (storage briefly unavailable) are
  counted apart, each with its own limit and its own message.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from core.errors import ApplicationError
from core.outbox import outbox_enqueue
from inference.models import InferenceJob, ModelVersion
from inference.serving.signals import job_status_changed

logger = logging.getLogger(__name__)
Status = InferenceJob.Status


# Columns the analysis of an image never reads, left out when its job is loaded: the image's DICOM attributes and
# the model's card and metrics (tens of kilobytes of JSON each; the card is read, once per worker process, when the
# model is loaded).
ANALYSIS_DEFERRED = ("image__dicom_attributes", "model_version__card", "model_version__metrics")


class TransientInferenceError(Exception):
    """Worth retrying (storage or database briefly unavailable)."""


RUN_TASK = "inference.run_inference"  # by name: inference.tasks.run_inference is the entry point into this module


def inference_job_send(job: InferenceJob) -> None:
    """Ask for the job to run, in the caller's transaction (core.outbox): sent to the broker after the commit."""
    outbox_enqueue(
        key=f"inference-job:{job.pk}",
        task=RUN_TASK,
        kwargs={"job_id": job.pk},
        description=f"AI analysis of image {job.image_id}",
        subject=f"study:{job.image.study_id}",
    )


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
    if not job.shadow:  # a shadow analysis moves no study, asks for no DICOM result object (docs/adr/0009)
        job_status_changed.send(sender=InferenceJob, job=job, previous=previous)
    return job


def inference_jobs_create(*, images) -> list[InferenceJob]:
    """One job per image for the active model, queued after the caller's transaction commits; with no active
    model the jobs wait (and are queued when a model is activated). Beside it, one shadow job per image for each
    malignancy model in shadow status (inference_shadow_jobs_create); those are not returned: nobody waits on
    them and no reader sees them."""
    active = ModelVersion.objects.malignancy().active().first()
    shadows = list(ModelVersion.objects.malignancy().filter(status=ModelVersion.Status.SHADOW))
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
                inference_job_send(job)
        jobs.append(job)
        inference_shadow_jobs_create(image=image, models=shadows)
    return jobs


def inference_shadow_jobs_create(*, image, models) -> list[InferenceJob]:
    """One shadow job of `image` per model in `models` (malignancy models in shadow status), queued through the
    outbox like any job. Keyed by (image, model version), as every job: a second call (a retried ingestion, a
    duplicate message) finds the job and sends nothing."""
    jobs = []
    for version in models:
        job, created = InferenceJob.all_objects.get_or_create(
            image=image,
            model_version=version,
            defaults={"status": Status.QUEUED, "queued_at": timezone.now(), "shadow": True},
        )
        if created:
            inference_job_send(job)
        jobs.append(job)
    return jobs


@transaction.atomic
def inference_job_retry(*, job: InferenceJob) -> InferenceJob:
    job = (
        InferenceJob.all_objects.select_for_update(of=("self",)).select_related("image", "model_version").get(pk=job.pk)
    )
    if job.status != Status.FAILED:
        raise ApplicationError(f"Only a failed analysis can be retried (this one is {job.get_status_display()}).")
    if job.shadow:
        if job.model_version.status != ModelVersion.Status.SHADOW:
            raise ApplicationError("The model of this shadow analysis is no longer in shadow; it cannot be retried.")
    else:
        active = ModelVersion.objects.malignancy().active().first()
        if job.model_version_id is not None and (active is None or active.pk != job.model_version_id):
            raise ApplicationError("The model of this analysis is no longer active; it cannot be retried.")
    job.interruptions = job.transient_retries = 0
    inference_job_transition(job=job, status=Status.QUEUED, also_save=("interruptions", "transient_retries"))
    inference_job_send(job)
    return job


def inference_job_claim(job_id: int, *, worker: str) -> InferenceJob | None:
    """Lock the job and mark it running on `worker`; None when there is nothing to do: finished, waiting, or
    running on a worker that is alive (a duplicate message). A job still marked running whose worker stopped
    beating was interrupted: it is taken over, unless that keeps happening (an image that kills the worker every
    time must not loop forever)."""
    with transaction.atomic():
        job = (
            InferenceJob.all_objects.select_for_update(of=("self",))
            .select_related("image", "model_version")
            .defer(*ANALYSIS_DEFERRED)
            .filter(pk=job_id)
            .first()
        )
        if job is None or job.status not in (Status.QUEUED, Status.RUNNING):
            return None
        if job.status == Status.RUNNING and job.worker != worker:
            cutoff = timezone.now() - timedelta(seconds=settings.WORKER_HEARTBEAT_TIMEOUT)
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
        job = InferenceJob.all_objects.select_for_update(of=("self",)).select_related("image").get(pk=job_id)
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
        job = InferenceJob.all_objects.select_for_update(of=("self",)).select_related("image").get(pk=job_id)
        if job.status != Status.RUNNING:
            return
        inference_job_transition(job=job, status=Status.FAILED, error_message=message, error_detail=detail)
