"""DICOM results follow analyses: when a job succeeds, its objects are built by the worker after the commit."""

from __future__ import annotations

import logging

from django.db import transaction
from django.dispatch import receiver

from inference.serving.signals import job_status_changed

logger = logging.getLogger(__name__)


@receiver(job_status_changed)
def _job_succeeded(sender, job, previous, **kwargs):
    from inference.models import InferenceJob

    if job.status != InferenceJob.Status.SUCCEEDED:
        return

    def enqueue(job_id=job.pk):
        from cases.tasks import dicom_results_build
        from inference.models import Prediction

        prediction_id = Prediction.objects.filter(job_id=job_id).values_list("pk", flat=True).first()
        if prediction_id is None:
            return
        try:
            dicom_results_build.delay(prediction_id=prediction_id)
        except Exception:  # a broker hiccup must not break the analysis that just succeeded
            logger.exception("Could not queue the DICOM results of job %s", job_id)

    transaction.on_commit(enqueue)
