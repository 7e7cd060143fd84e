"""Celery entry points of the ground floor (discovered by mammo_platform.celery)."""

from __future__ import annotations

from celery import shared_task

from core.outbox import outbox_sweep as _outbox_sweep


@shared_task(name="core.outbox_sweep", ignore_result=True)
def outbox_sweep() -> dict[str, int]:
    """Run by Celery beat every OUTBOX_SWEEP_SECONDS (also `manage.py outbox_sweep`)."""
    return _outbox_sweep()
