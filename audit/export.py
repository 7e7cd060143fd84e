"""The audit trail as CSV: streamed in keyset batches (constant memory), safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import QuerySet

from audit.models import AuditEvent

EXPORT_BATCH = 1000

CSV_HEADER = [
    "id",
    "time",
    "actor_id",
    "user",
    "role",
    "action",
    "object_type",
    "object_id",
    "study_id",
    "address",
    "details",
    "chain",
    "prev_hash",
    "hash",
]


class _Echo:
    """A file-like object whose write() hands the line back, so csv.writer feeds a generator."""

    def write(self, value: str) -> str:
        return value


def _cell(value) -> str:
    """Text that a spreadsheet would run as a formula is prefixed with an apostrophe (CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_lines(events: QuerySet[AuditEvent]) -> Iterator[str]:
    """Header, then the events newest first, read in keyset batches so memory stays constant."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    before = None
    while True:
        batch = events if before is None else events.filter(id__lt=before)
        batch = list(batch.order_by("-id")[:EXPORT_BATCH])
        if not batch:
            return
        for e in batch:
            yield writer.writerow(
                [
                    e.pk,
                    e.created_at.isoformat(),
                    e.actor_id if e.actor_id is not None else "",
                    _cell(e.actor_username),
                    e.actor_role,
                    _cell(e.action),
                    _cell(e.object_type),
                    _cell(e.object_id),
                    e.study_id if e.study_id is not None else "",
                    e.ip_address or "",
                    json.dumps(e.details, cls=DjangoJSONEncoder, ensure_ascii=False, sort_keys=True),
                    e.chain,
                    e.prev_hash,
                    e.hash,
                ]
            )
        before = batch[-1].pk
