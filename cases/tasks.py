"""Celery entry points of the clinical side (discovered by mammo_platform.celery): ids in, call a service, handle
retries. No rules here."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

from cases.performance.strategy_services import TASK_NAME, strategy_report_compute

logger = logging.getLogger(__name__)


@shared_task(name="cases.reconcile_storage", ignore_result=True)
def reconcile_storage() -> str:
    """Run by Celery beat every STORAGE_RECONCILE_SECONDS (also `manage.py reconcile_storage`)."""
    from cases.studies.reconciliation import storage_reconcile

    return storage_reconcile().summary()


@shared_task(
    name=TASK_NAME,
    acks_late=True,  # a worker that dies mid-computation leaves the message to be redelivered
    reject_on_worker_lost=True,
    ignore_result=True,
)
def compute_strategy_report(*, report_id: int) -> None:
    strategy_report_compute(report_id=report_id)


# acks_late: a worker that dies mid-task leaves the message to be redelivered (and the outbox sweep sends it again).
RELIABLE = {"bind": True, "acks_late": True, "reject_on_worker_lost": True, "max_retries": 5}


@shared_task(name="cases.dicom_image_results_build", **RELIABLE)
def dicom_image_results_build(self, *, prediction_id: int) -> None:
    """The DICOM objects of one successful analysis (idempotent: objects are made once)."""
    from cases.dicom.results import dicom_image_results_build as build

    try:
        build(prediction_id=prediction_id)
    except (OperationalError, InterfaceError) as exc:
        raise self.retry(exc=exc, countdown=2 ** (self.request.retries + 2)) from exc


@shared_task(name="cases.dicom_study_results_build", **RELIABLE)
def dicom_study_results_build(self, *, study_id: int) -> None:
    """The study's DICOM report objects, once the study is stable and settled (idempotent: versions by content)."""
    from cases.dicom.results import dicom_study_results_build as build

    try:
        build(study_id=study_id)
    except (OperationalError, InterfaceError) as exc:
        raise self.retry(exc=exc, countdown=2 ** (self.request.retries + 2)) from exc


@shared_task(name="cases.ai_density_estimate", **RELIABLE)
def ai_density_estimate(self, *, study_id: int) -> None:
    """The study's AI breast density estimate, once it is stable (idempotent: one per model and set of views)."""
    from cases.studies.ai_density import ai_density_estimate as estimate

    try:
        estimate(study_id=study_id)
    except (OperationalError, InterfaceError) as exc:
        raise self.retry(exc=exc, countdown=2 ** (self.request.retries + 2)) from exc


@shared_task(name="cases.dicom_delivery_send", **RELIABLE)
def dicom_delivery_send(self, *, delivery_id: int) -> str:
    """One attempt; a failed one asks the outbox for the next after its backoff (attempts are counted on the
    delivery row, so the limit holds across redeliveries)."""
    from cases.dicom.delivery import dicom_delivery_attempt

    try:
        return dicom_delivery_attempt(delivery_id=delivery_id).status
    except (OperationalError, InterfaceError) as exc:
        raise self.retry(exc=exc, countdown=30) from exc
