"""Writing and checking the audit trail. Every important state change calls audit_record() inside its own
transaction, so the change and its audit row commit (or roll back) together.

Who and from where: services do not take a request; AuditContextMiddleware puts the signed-in user and the
client's address in a context variable for the duration of each request, and audit_record() reads them when the
caller does not name an actor. Celery tasks record as the system (no actor).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from cases.models.audit import GENESIS_HASH, AuditEvent

# Any constant: the advisory lock that serialises appends to the chain on PostgreSQL.
_CHAIN_LOCK = 7_406_113_001


@dataclass(frozen=True)
class _RequestContext:
    request: object


_context: ContextVar[_RequestContext | None] = ContextVar("audit_request", default=None)


class AuditContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _context.set(_RequestContext(request))
        try:
            return self.get_response(request)
        finally:
            _context.reset(token)


def _current_request():
    ctx = _context.get()
    return ctx.request if ctx else None


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
    from accounts.throttling import client_address

    request = _current_request()
    if actor is None and request is not None and getattr(request, "user", None) is not None:
        actor = request.user if request.user.is_authenticated else None
    if ip_address is None and request is not None:
        ip_address = client_address(request)
    if obj is not None:
        object_type = object_type or obj._meta.model_name
        object_id = object_id or obj.pk
    with transaction.atomic():
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


@dataclass(frozen=True)
class ChainBreak:
    event_id: int
    problem: str


def audit_chain_verify(*, batch_size: int = 2000) -> tuple[int, ChainBreak | None]:
    """Walk the chain in order; return how many events were checked and the first broken link, if any."""
    previous = GENESIS_HASH
    checked = 0
    for event in _iterate(batch_size):
        if event.prev_hash != previous:
            return checked, ChainBreak(event.pk, "its previous-hash does not match the event before it")
        if event.compute_hash() != event.hash:
            return checked, ChainBreak(event.pk, "its contents do not match its hash (the row was altered)")
        previous = event.hash
        checked += 1
    return checked, None


def _iterate(batch_size: int) -> Iterator[AuditEvent]:
    last_id = 0
    while True:
        batch = list(AuditEvent.objects.filter(id__gt=last_id).order_by("id")[:batch_size])
        if not batch:
            return
        yield from batch
        last_id = batch[-1].pk
