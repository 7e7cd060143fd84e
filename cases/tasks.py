"""Celery entry points of the clinical side (discovered by mammo_platform.celery): ids in, call a service. No rules
here."""

from __future__ import annotations

from celery import shared_task

from cases.performance.strategy_services import TASK_NAME, strategy_report_compute


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
