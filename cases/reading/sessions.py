"""Reading sessions: a reader starts one, goes from case to case in their queue, and ends it.

While a session is open, submitting a read takes the reader to the next case (next_case: the worklist's own queues,
in their order of need) and the reading page shows how far along the session is. Reads submitted during the session
point to it (cases.reading.services.read_submit), which the statistics page counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.roles import Capability
from audit.services import audit_record
from cases.models import Read, ReadingSession
from cases.reading import claims
from cases.reading.worklist import Queue, WorklistQuery, queues_for, worklist, worklist_counts
from core.errors import ApplicationError

# The queues a session goes through, most pressing first (worklist.WORK_QUEUES without arbitration, which has its
# own page): the reader's unfinished reads, then second reads, then first reads.
SESSION_QUEUES = (Queue.IN_PROGRESS, Queue.AWAITING_SECOND, Queue.AWAITING_FIRST)


def session_open_get(*, user) -> ReadingSession | None:
    """The reader's open session, if any (at most one: a database constraint)."""
    if user is None or not user.is_authenticated:
        return None
    return ReadingSession.objects.filter(reader=user, ended_at__isnull=True).first()


@transaction.atomic
def session_start(*, user) -> ReadingSession:
    """Open a reading session; refused while one is open (the database refuses a second one too)."""
    claims.require_capability(user, Capability.STUDY_READ)
    if session_open_get(user=user) is not None:
        raise ApplicationError("You already have a reading session open; end it before starting another.")
    try:
        with transaction.atomic():
            session = ReadingSession.objects.create(reader=user)
    except IntegrityError as exc:  # two starts at the same moment: the constraint keeps one
        raise ApplicationError("You already have a reading session open; end it before starting another.") from exc
    audit_record(action="reading.session_started", actor=user, obj=session, details={})
    return session


@transaction.atomic
def session_end(*, user) -> ReadingSession:
    """Close the reader's open session, recording its length and the reads given in it."""
    session = ReadingSession.objects.select_for_update().filter(reader=user, ended_at__isnull=True).first()
    if session is None:
        raise ApplicationError("You have no reading session open.")
    session.ended_at = timezone.now()
    session.save(update_fields=["ended_at"])
    audit_record(
        action="reading.session_ended",
        actor=user,
        obj=session,
        details={
            "reads": session.reads.filter(status=Read.Status.SUBMITTED).count(),
            "seconds": round((session.ended_at - session.started_at).total_seconds()),
        },
    )
    return session


def next_case(*, user) -> Read | None:
    """The reader's next case: their oldest unfinished read, else the oldest study awaiting its second read, else
    its first (claimed for them). None when their queues are empty. A study someone else claims at the same moment
    is skipped."""
    queues = queues_for(user)
    for queue in SESSION_QUEUES:
        if queue not in queues:
            continue
        studies = worklist(user=user, query=WorklistQuery(queue=queue)).values_list("pk", flat=True)
        for study_id in studies[:10]:
            if queue == Queue.IN_PROGRESS:
                read = Read.objects.filter(study_id=study_id, reader=user, status=Read.Status.IN_PROGRESS).first()
                if read is not None and read.kind in Read.DOUBLE:
                    return read
                continue
            try:
                return claims.read_claim(study_id=study_id, user=user)
            except ApplicationError:
                continue
    return None


@dataclass(frozen=True)
class SessionProgress:
    number: int  # the current case's place in the session (1-based)
    total: int  # reads given in the session plus the cases now waiting in the reader's queues
    done: int  # reads submitted in the session so far


def session_progress(*, session: ReadingSession, user, current: Read | None = None) -> SessionProgress:
    """For "case n of m": the reads submitted in the session, and what waits in the reader's queues now (their reads in
    progress, the current one included, and the studies awaiting a first or second read)."""
    done = session.reads.filter(status=Read.Status.SUBMITTED).count()
    counts = worklist_counts(user=user)
    waiting = sum(counts.get(q, 0) for q in SESSION_QUEUES)
    number = done + 1 if current is not None and not current.is_submitted else max(done, 1)
    return SessionProgress(number=number, total=max(done + waiting, number), done=done)
