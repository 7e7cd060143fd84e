"""Writing the audit trail. Every important state change calls audit_record() inside its own transaction, so the
change and its audit row commit (or roll back) together. Rows are chained by hash (audit.models) and checked by
audit.verification; the action names are those of audit.actions.

The trail is AUDIT_CHAINS chains side by side (ADR 0004). On PostgreSQL a transaction appends to one chain, holding
that chain's advisory lock until it commits (the rows of a chain are linked in the order they commit); it takes the
chain its connection used last when that one is free, else the first free one, and waits only when every chain is
held. So up to AUDIT_CHAINS transactions append at once, where one global lock let one through at a time (see
docs/audit.md for the figures). SQLite lets one transaction write at a time anyway (BEGIN IMMEDIATE): chain 0.
"""

from __future__ import annotations

import hashlib
import ipaddress
import random

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from accounts.addresses import client_address
from audit.actions import audit_action_check
from audit.context import current_request
from audit.models import GENESIS_HASH, AuditEvent

AUDIT_CHAINS = 16
# The first key of the chains' two-key advisory locks (pg_advisory_xact_lock(space, chain)); any constant.
_CHAIN_LOCK_SPACE = 7_406_113


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
    """Append one event to the trail. Joins the caller's transaction when there is one. `action` must be one of
    audit.actions.ACTIONS (UnknownAuditAction otherwise)."""
    audit_action_check(action)
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
        chain = _chain_take()
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
            chain=chain,
            prev_hash=_chain_last_hash(chain),
        )
        event.hash = event.compute_hash()
        event.save()
    return event


def audit_events_append(events: list[AuditEvent]) -> list[AuditEvent]:
    """Append events built elsewhere (cases.scale_data's synthetic site) in one bulk insert, on one chain."""
    for event in events:
        audit_action_check(event.action)
    with transaction.atomic(savepoint=False):
        chain = _chain_take()
        last = _chain_last_hash(chain)
        for event in events:
            event.chain, event.prev_hash = chain, last
            event.hash = last = event.compute_hash()
        return AuditEvent.objects.bulk_create(events, batch_size=2000)


def _chain_take() -> int:
    """The chain this transaction appends to, locked until it ends (PostgreSQL; must run inside a transaction)."""
    if connection.vendor != "postgresql":
        return 0
    # A transaction that already holds a chain gets it again at once (advisory locks are re-entrant): the one its
    # connection used last comes first, so a transaction's events stay on one chain.
    preferred = getattr(connection, "_audit_chain", None)
    preferred = random.randrange(AUDIT_CHAINS) if preferred is None else preferred % AUDIT_CHAINS
    with connection.cursor() as cursor:
        for offset in range(AUDIT_CHAINS):
            chain = (preferred + offset) % AUDIT_CHAINS
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [_CHAIN_LOCK_SPACE, chain])
            if cursor.fetchone()[0]:
                break
        else:  # every chain is held by a transaction that has not committed yet: queue for this connection's own
            chain = preferred
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_CHAIN_LOCK_SPACE, chain])
    connection._audit_chain = chain
    return chain


def _chain_last_hash(chain: int) -> str:
    last = AuditEvent.objects.filter(chain=chain).order_by("-id").values_list("hash", flat=True).first()
    return last or GENESIS_HASH


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
