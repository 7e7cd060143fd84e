"""Celery entry points of the clinical side (discovered by mammo_platform.celery): ids in, call a service, handle
retries. No rules here."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError
from django.utils import timezone

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


@shared_task(bind=True, name="cases.dicom_results_build", acks_late=True, reject_on_worker_lost=True, max_retries=5)
def dicom_results_build(self, *, prediction_id: int) -> None:
    """The DICOM objects of one successful analysis (idempotent: objects are made once)."""
    from cases.dicom.results import dicom_results_for_prediction

    try:
        dicom_results_for_prediction(prediction_id=prediction_id)
    except (OperationalError, InterfaceError) as exc:
        raise self.retry(exc=exc, countdown=2 ** (self.request.retries + 2)) from exc


@shared_task(bind=True, name="cases.dicom_delivery_send", acks_late=True, reject_on_worker_lost=True, max_retries=None)
def dicom_delivery_send(self, *, delivery_id: int) -> str:
    """One attempt; a failed one is tried again after the backoff the delivery row says (its attempts are counted
    on the row, so the limit holds across redeliveries)."""
    from cases.dicom.delivery import dicom_delivery_attempt

    try:
        outcome = dicom_delivery_attempt(delivery_id=delivery_id)
    except (OperationalError, InterfaceError) as exc:
        raise self.retry(exc=exc, countdown=30) from exc
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status


@shared_task(name="cases.dicom_deliveries_sweep", ignore_result=True)
def dicom_deliveries_sweep() -> list[int]:
    """Pending deliveries whose next attempt is long overdue (their message was lost): sent again."""
    from cases.models import DicomDelivery

    overdue = timezone.now() - timezone.timedelta(minutes=5)
    ids = list(
        DicomDelivery.objects.filter(status=DicomDelivery.Status.PENDING, updated_at__lt=overdue).values_list(
            "pk", flat=True
        )[:500]
    )
    for delivery_id in ids:
        dicom_delivery_send.delay(delivery_id=delivery_id)
    return ids
