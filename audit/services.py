"""Writing the audit trail. Every important state change calls audit_record() inside its own transaction, so the
change and its audit row commit (or roll back) together. Rows are chained by hash (audit.models) and checked by
audit.verification."""

from __future__ import annotations

import hashlib
import ipaddress

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from accounts.addresses import client_address
from audit.context import current_request
from audit.models import GENESIS_HASH, AuditEvent

# Any constant: the advisory lock that serialises appends to the chain on PostgreSQL.
_CHAIN_LOCK = 7_406_113_001


def _valid_ip(value: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address(value)) if value else None
    except ValueError:
        return None


def audit_record(
    *,
    action: str,
    actor=None,
    obj=None,
    object_type: str = "",
    object_id: str | int = "",
    study_id: int | None = None,
    details: dict | None = None,
    ip_address: str | None = None,
) -> AuditEvent:
    """Append one event to the chain. Joins the caller's transaction when there is one."""
    request = current_request()
    if actor is None and request is not None and getattr(request, "user", None) is not None:
        actor = request.user if request.user.is_authenticated else None
    if ip_address is None and request is not None:
        ip_address = client_address(request)
    if obj is not None:
        object_type = object_type or obj._meta.model_name
        object_id = object_id or obj.pk
    # No savepoint inside the caller's transaction: an event that cannot be written fails the whole change it
    # records (nothing is kept unaudited), so there is nothing to roll back to.
    with transaction.atomic(savepoint=False):
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK])
        last = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first()
        event = AuditEvent(
            created_at=timezone.now(),
            actor_id=actor.pk if actor is not None else None,
            actor_username=actor.get_username() if actor is not None else "",
            actor_role=getattr(actor, "role", "") if actor is not None else "",
            action=action,
            object_type=object_type,
            object_id=str(object_id) if object_id != "" else "",
            study_id=study_id,
            ip_address=_valid_ip(ip_address),
            details=details or {},
            prev_hash=last or GENESIS_HASH,
        )
        event.hash = event.compute_hash()
        event.save()
    return event


def audit_study_opened(*, user, study_id: int, image_id: int, kind: str, session_key: str = "") -> AuditEvent | None:
    """Record that a person opened a study's images: once per person, study and session within
    AUDIT_ACCESS_WINDOW_SECONDS, not once per thumbnail, overlay or tile (which drowned the trail). The row says
    who, which study (which woman), when, from where and which image first; an API client without a session counts
    as one session per window. Downloads of originals are recorded every time, by the caller."""
    session = hashlib.sha256((session_key or "api").encode()).hexdigest()[:16]
    window = settings.AUDIT_ACCESS_WINDOW_SECONDS
    if not cache.add(f"audit-opened:{user.pk}:{study_id}:{session}", 1, timeout=window):
        return None  # already recorded in this window (cache.add is atomic: concurrent image requests record once)
    return audit_record(
        action="study.images_opened",
        actor=user,
        object_type="study",
        object_id=study_id,
        study_id=study_id,
        details={"first_image_id": image_id, "first_kind": kind, "session": session, "window_seconds": window},
    )
