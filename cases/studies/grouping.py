"""Which study received images join, decided once for every process.

The DICOM listener and every web worker (STOW-RS) receive instances; the views of one DICOM study can arrive at the
same moment on several associations or requests, in several processes. Finding the open study of that DICOM study
and creating it when there is none must happen one sender at a time, or two senders both find none and both create
one. study_upload() therefore does the finding inside the transaction that creates the study, after taking the
group's lock (study_group_lock):

- PostgreSQL: a transaction-level advisory lock keyed by the group (the StudyInstanceUID, or the exam a dataset's
  naming convention names), held until the transaction that found or created the study commits, so the next sender
  of that group finds it. Senders of other studies are not held up; the lock table keeps nothing after the commit.
- SQLite (the embedded mode): every write transaction begins with BEGIN IMMEDIATE (settings: transaction_mode),
  which takes the database's one write lock, so the finding and the creating are serialised for every study at once.

Appointments come first (cases.studies.placement): an instance whose accession number is an appointment's joins
that appointment's group ('appointment:<id>'), whatever its StudyInstanceUID, and an unmatched one at a site that
holds them joins a held group ('held-study:<uid>'), which finds held studies only: held images never join a study
that readers may read, and linked ones never join a study of no appointment.

A unique constraint cannot say this: one DICOM study may rightly become several platform studies (images that
arrive after the first read was claimed start a new one), and an exam named by a dataset convention is not a column.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection

from cases.models import Appointment, Study

# The first key of the two-key advisory locks (a key space apart from the one-key locks, such as the audit trail's).
_GROUPING_LOCK_SPACE = 740_611


def _none() -> None:
    return None


@dataclass(frozen=True)
class StudyGroup:
    """Received images of one group (a DICOM study, an exam a naming convention names, an appointment) and how to
    find its open study. `find` runs under the group's lock, inside the transaction that adds the images; it returns
    the study the images join (one that may still take images), or None for a new one.

    Appointments (cases.studies.placement): a new study of a group with an `appointment` belongs to it (and its
    episode); one with a `held_reason` is held for a person to match. `find_held` finds the held study of the
    same DICOM study or exam, for the held group made from this one."""

    key: str
    find: Callable[[], Study | None]
    find_held: Callable[[], Study | None] = _none
    appointment: Appointment | None = None
    held_reason: str = ""

    @property
    def held(self) -> bool:
        return bool(self.held_reason)


def study_group_lock(key: str) -> None:
    """Hold the group's lock until the current transaction ends (PostgreSQL); on SQLite the transaction already holds
    the database's write lock. Must be called inside transaction.atomic()."""
    if connection.vendor != "postgresql":
        return
    digest = hashlib.sha256(key.encode()).digest()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, %s)", [_GROUPING_LOCK_SPACE, int.from_bytes(digest[:4], signed=True)]
        )
