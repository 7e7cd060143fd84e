"""The study follows its images' analyses: serving announces every job status change
(inference.serving.signals.job_status_changed) and the study's status is refreshed in the same transaction; every
prediction stored or removed refreshes the study's AI suspicion (the worklist's sort)."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from cases.studies.ai_density import ai_density_request
from cases.studies.services import study_ai_suspicion_raise, study_ai_suspicion_refresh, study_status_refresh
from inference.models import Prediction
from inference.serving.signals import job_status_changed


@receiver(job_status_changed)
def _job_status_changed(sender, job, previous, **kwargs):
    if job.shadow:  # a shadow analysis (docs/adr/0009): the study neither waits for it nor shows it
        return
    study_status_refresh(study_id=job.image.study_id, changed_job=job)
    if job.is_finished:  # the study's density is estimated once it is stable (asked for in this transaction)
        ai_density_request(study_id=job.image.study_id)


@receiver(post_save, sender=Prediction)
def _prediction_saved(sender, instance, created, **kwargs):
    if instance.shadow:  # never in the worklist's AI sort
        return
    if created:
        study_ai_suspicion_raise(study_id=instance.image.study_id, probability=instance.probability)
    else:
        study_ai_suspicion_refresh(study_id=instance.image.study_id)


@receiver(post_delete, sender=Prediction)
def _prediction_deleted(sender, instance, **kwargs):
    if instance.shadow:
        return
    study_ai_suspicion_refresh(study_id=instance.image.study_id)
