"""The audit trail: append-only rows, each carrying the hash of the row before it in its chain.

The database refuses UPDATE and DELETE on this table (a trigger installed by migration cases 0003); the hash chains
make an edit made around the trigger (by someone who can disable it) detectable with `manage.py verify_audit`.
The trail is a few chains side by side (`chain`), so that several transactions can append at once (ADR 0004,
docs/audit.md); each chain links its rows in id order from GENESIS_HASH.
Rows store ids and names, not foreign keys, so nothing in the trail depends on other rows staying.
"""

import hashlib
import json

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone

GENESIS_HASH = "0" * 64


class AuditEvent(models.Model):
    created_at = models.DateTimeField(db_index=True)
    actor_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    actor_username = models.CharField(max_length=150, blank=True)
    actor_role = models.CharField(max_length=32, blank=True)
    action = models.CharField(max_length=40, db_index=True)
    object_type = models.CharField(max_length=40, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    study_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    details = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    # Which chain the row is linked into. Not part of the hashed payload (rows written before chains existed are
    # chain 0 and keep their hashes): a row moved to another chain breaks both chains' links.
    chain = models.SmallIntegerField(default=0, db_default=0)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["chain", "id"], name="auditevent_chain_id")]
        # The table keeps the name it had when the model lived in the cases app (migration cases 0004 moved the
        # model's state only): its append-only triggers (cases 0003) stay attached to it.
        db_table = "cases_auditevent"

    def __str__(self) -> str:
        return f"{timezone.localtime(self.created_at):%Y-%m-%d %H:%M:%S} {self.actor_username or '-'} {self.action}"

    def compute_hash(self) -> str:
        return compute_hash(self.prev_hash, self.canonical_payload())

    def canonical_payload(self) -> str:
        return json.dumps(
            {
                "created_at": self.created_at.isoformat(),
                "actor_id": self.actor_id,
                "actor_username": self.actor_username,
                "actor_role": self.actor_role,
                "action": self.action,
                "object_type": self.object_type,
                "object_id": self.object_id,
                "study_id": self.study_id,
                "ip_address": self.ip_address,
                # Round-trip through JSON so the value hashed is the value stored (numbers, dates as text).
                "details": json.loads(json.dumps(self.details, cls=DjangoJSONEncoder)),
            },
            sort_keys=True,
            separators=(",", ":"),
        )


def compute_hash(prev_hash: str, payload: str) -> str:
    return hashlib.sha256((prev_hash + payload).encode()).hexdigest()
