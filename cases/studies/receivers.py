"""The study follows its images' analyses: serving announces every job status change
(inference.serving.signals.job_status_changed) and the study's status is refreshed in the same transaction."""

from django.dispatch import receiver

from cases.studies.services import study_status_refresh
from inference.serving.signals import job_status_changed


@receiver(job_status_changed)
def _job_status_changed(sender, job, previous, **kwargs):
    study_status_refresh(study=job.image.study)
