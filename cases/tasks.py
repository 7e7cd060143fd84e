"""Celery entry points of the clinical side (discovered by mammo_platform.celery). No rules here."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="cases.reconcile_storage", ignore_result=True)
def reconcile_storage() -> str:
    """Run by Celery beat every STORAGE_RECONCILE_SECONDS (also `manage.py reconcile_storage`)."""
    from cases.studies.reconciliation import storage_reconcile

    return storage_reconcile().summary()
