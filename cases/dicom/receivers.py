"""DICOM results follow analyses (inference.serving.signals.job_status_changed, sent inside the transaction that
changes the job): when an analysis succeeds its image's objects are asked for, and when any analysis of a study
ends (succeeded or failed) the study's report is asked for, to be made once the study is stable. Both go through
the outbox in that same transaction, so they are asked for exactly when the analysis ends, or not at all. The
study's report waits for its AI density estimate, and is asked for again when that is recorded."""

from __future__ import annotations

from django.db.models.signals import post_save
from django.dispatch import receiver

from cases.dicom.results import dicom_image_results_request, dicom_study_results_request
from cases.models import StudyDensity
from inference.models import InferenceJob
from inference.serving.signals import job_status_changed


@receiver(job_status_changed)
def _analysis_ended(sender, job, previous, **kwargs):
    if job.shadow:  # SR, SC and CAD SR come from the active model's analyses only
        return
    if job.status == InferenceJob.Status.SUCCEEDED:
        # The job succeeds in the transaction that stores its prediction (inference.serving.pipeline), which is
        # already attached to it: no query.
        dicom_image_results_request(prediction=job.prediction)
    if job.status in (InferenceJob.Status.SUCCEEDED, InferenceJob.Status.FAILED):
        dicom_study_results_request(study_id=job.image.study_id)


@receiver(post_save, sender=StudyDensity)
def _density_estimated(sender, instance, created, **kwargs):
    """The study's reports wait for its AI density estimate (the CAD SR carries the breast composition): asked for
    again, in the estimate's transaction, once it is recorded."""
    if created:
        dicom_study_results_request(study_id=instance.study_id)
