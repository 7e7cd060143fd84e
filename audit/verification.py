"""Checking the audit trail's hash chains (manage.py verify_audit)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from audit.models import GENESIS_HASH, AuditEvent


@dataclass(frozen=True)
class ChainBreak:
    event_id: int
    problem: str


def audit_chain_verify(*, batch_size: int = 2000) -> tuple[int, ChainBreak | None]:
    """Walk the trail in id order, each row against the row before it in its own chain (the first row of a chain
    against GENESIS_HASH); return how many events were checked and the first broken link, if any."""
    previous: dict[int, str] = {}
    checked = 0
    for event in _iterate(batch_size):
        if event.prev_hash != previous.get(event.chain, GENESIS_HASH):
            return checked, ChainBreak(
                event.pk, f"its previous-hash does not match the event before it (chain {event.chain})"
            )
        if event.compute_hash() != event.hash:
            return checked, ChainBreak(event.pk, "its contents do not match its hash (the row was altered)")
        previous[event.chain] = event.hash
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
