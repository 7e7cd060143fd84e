"""Reads of the audit trail for auditors. Like every clinical selector, they take the requesting user."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from accounts.roles import Capability, role_can
from audit.models import AuditEvent


@dataclass(frozen=True)
class AuditFilters:
    action: str = ""
    user: str = ""
    study: int | None = None
    date_from: date | None = None
    date_to: date | None = None
    text: str = ""

    def as_details(self) -> dict:
        """The filters that were set, as JSON-friendly values (for the export's own audit row)."""
        values = {k: v for k, v in asdict(self).items() if v not in ("", None)}
        return {k: v.isoformat() if isinstance(v, date) else v for k, v in values.items()}


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def audit_event_list(*, user, filters: AuditFilters) -> QuerySet[AuditEvent]:
    """Audit events matching the filters, newest first. Dates are whole days in the site's time zone."""
    if not role_can(user, Capability.AUDIT_VIEW):
        raise PermissionDenied(f"Your role does not allow this ({Capability.AUDIT_VIEW}).")
    events = AuditEvent.objects.all()
    if filters.action:
        events = events.filter(action=filters.action)
    if filters.user:
        events = events.filter(actor_username__icontains=filters.user)
    if filters.study is not None:
        events = events.filter(study_id=filters.study)
    if filters.date_from:
        events = events.filter(created_at__gte=_day_start(filters.date_from))
    if filters.date_to:
        events = events.filter(created_at__lt=_day_start(filters.date_to + timedelta(days=1)))
    if filters.text:
        events = events.annotate(details_text=Cast("details", TextField())).filter(details_text__icontains=filters.text)
    return events.order_by("-id")
