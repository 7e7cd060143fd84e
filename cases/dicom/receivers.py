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
    # The job succeeds in the transaction that stores its prediction (inference.serving.pipeline), which is
    # already attached to it: no query.
    prediction_id = job.prediction.pk

    def enqueue():
        from cases.tasks import dicom_results_build

        try:
            dicom_results_build.delay(prediction_id=prediction_id)
        except Exception:  # a broker hiccup must not break the analysis that just succeeded
            logger.exception("Could not queue the DICOM results of job %s", job.pk)

    transaction.on_commit(enqueue)
