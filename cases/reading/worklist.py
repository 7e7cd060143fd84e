"""Reads of the reading workflow: the worklist queues and which reads a user may see.

Blinding is enforced here and only here: every page, API response and export that shows reads asks
`reads_visible_to()`.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.db.models import Count, Exists, F, IntegerField, Min, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from accounts.roles import Capability, role_can
from cases.ai_visibility import ai_suspended, reads_are_unaided
from cases.models import Read, Study


class Queue:
    AWAITING_FIRST = "awaiting_first"
    AWAITING_SECOND = "awaiting_second"
    IN_PROGRESS = "in_progress"
    ARBITRATION = "arbitration"
    COMPLETED = "completed"

    LABELS = {
        AWAITING_FIRST: "Awaiting first read",
        AWAITING_SECOND: "Awaiting second read",
        IN_PROGRESS: "My reads in progress",
        ARBITRATION: "Awaiting arbitration",
        COMPLETED: "Completed by me",
    }


SORTS = {"oldest": "Oldest first", "suspicion": "Highest AI suspicion first"}


def _double_read(kind: str, **extra) -> Exists:
    return Exists(Read.objects.filter(study=OuterRef("pk"), kind=kind, **extra))


def _queue_filter(queue: str, user) -> Q:
    mine = Exists(Read.objects.filter(study=OuterRef("pk"), reader=user, kind__in=Read.DOUBLE))
    if queue == Queue.AWAITING_FIRST:
        return Q(status__in=Study.READABLE) & ~Q(_double_read("first"))
    if queue == Queue.AWAITING_SECOND:
        return (
            Q(status__in=Study.READABLE)
            & Q(_double_read("first", status=Read.Status.SUBMITTED))
            & ~Q(_double_read("second"))
            & ~Q(mine)
        )
    if queue == Queue.IN_PROGRESS:
        return Q(Exists(Read.objects.filter(study=OuterRef("pk"), reader=user, status=Read.Status.IN_PROGRESS)))
    if queue == Queue.ARBITRATION:
        return Q(status=Study.Status.ARBITRATION) & ~Q(mine)
    if queue == Queue.COMPLETED:
        return Q(Exists(Read.objects.filter(study=OuterRef("pk"), reader=user, status=Read.Status.SUBMITTED)))
    raise ValueError(f"Unknown queue {queue!r}")


def queues_for(user) -> list[str]:
    queues = [Queue.AWAITING_FIRST, Queue.AWAITING_SECOND, Queue.IN_PROGRESS]
    if role_can(user, Capability.ARBITRATE):
        queues.append(Queue.ARBITRATION)
    return [*queues, Queue.COMPLETED]


@dataclass(frozen=True)
class WorklistQuery:
    queue: str = Queue.AWAITING_FIRST
    sort: str = "oldest"
    search: str = ""


def worklist(*, user, query: WorklistQuery) -> QuerySet[Study]:
    """One queue of the worklist. A fixed number of SQL queries whatever the number of studies."""
    if not role_can(user, Capability.STUDY_READ):
        raise PermissionDenied("Only radiologists have a worklist.")
    if query.queue not in queues_for(user):
        raise PermissionDenied("This queue is not available to your role.")
    # ai_suspicion is stored on the study (kept in step with its predictions: cases.studies.services), so sorting
    # by it is an index scan, not a maximum computed for every study in the queue.
    studies = (
        Study.objects.filter(_queue_filter(query.queue, user))
        .select_related("patient")
        .annotate(ready_at=_ready_at(), reads_done=_reads_done())
    )
    if query.search:
        studies = studies.filter(
            Q(patient__patient_id__icontains=query.search) | Q(accession_number__icontains=query.search)
        )
    # No DISTINCT: every filter is an EXISTS and the only join (the patient) is many-to-one, so a study comes out
    # once. DISTINCT made the paginator's COUNT wrap the whole query.
    if query.sort == "suspicion":
        # Studies without an AI result last; the same expression as the study_suspicion_order index.
        return studies.order_by(Coalesce(F("ai_suspicion"), Value(-1.0)).desc(), "created_at", "pk")
    return studies.order_by("created_at", "pk")


def _ready_at():
    """When the study became ready for reading: its first audited move into a readable status (the audit trail is
    the one append-only record of status changes), else when it came in."""
    from audit.models import AuditEvent

    first_ready = (
        AuditEvent.objects.filter(
            study_id=OuterRef("pk"), action="study.status_changed", details__to__in=list(Study.READABLE)
        )
        .values("study_id")
        .annotate(at=Min("created_at"))
        .values("at")
    )
    return Coalesce(Subquery(first_ready[:1]), F("created_at"))


def _reads_done():
    """Submitted first and second reads of the study (0, 1 or 2)."""
    done = (
        Read.objects.filter(study=OuterRef("pk"), kind__in=Read.DOUBLE, status=Read.Status.SUBMITTED)
        .values("study")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(done[:1], output_field=IntegerField()), 0)


# Queues that hold work for the user, most pressing first: the worklist opens on the first of them that is not
# empty. An arbitration (a lead's) holds back a woman's result that two readers have already given; a read in
# progress is the user's own, half done; a study awaiting its second read is closer to a result than one awaiting
# its first.
WORK_QUEUES = (Queue.ARBITRATION, Queue.IN_PROGRESS, Queue.AWAITING_SECOND, Queue.AWAITING_FIRST)


def first_queue_with_work(*, user, counts: dict[str, int]) -> str:
    """The queue that needs this user most (WORK_QUEUES' order); with no work anywhere, the first queue."""
    queues = queues_for(user)
    return next((q for q in WORK_QUEUES if q in queues and counts.get(q)), queues[0])


def worklist_counts(*, user) -> dict[str, int]:
    """The number of studies in each of the user's queues, in two queries whatever the site's size: the queues of
    studies waiting for someone (a few hundred at most, found through the status index) are counted over those
    studies only, and the user's own queues over the user's reads (one read per study and reader), never over every
    study with an EXISTS each."""
    queues = queues_for(user)
    waiting = [q for q in (Queue.AWAITING_FIRST, Queue.AWAITING_SECOND, Queue.ARBITRATION) if q in queues]
    counts = Study.objects.filter(status__in=[*Study.READABLE, Study.Status.ARBITRATION]).aggregate(
        **{queue: Count("pk", filter=_queue_filter(queue, user)) for queue in waiting}
    )
    counts.update(
        Read.objects.filter(reader=user).aggregate(
            **{
                Queue.IN_PROGRESS: Count("study", distinct=True, filter=Q(status=Read.Status.IN_PROGRESS)),
                Queue.COMPLETED: Count("study", distinct=True, filter=Q(status=Read.Status.SUBMITTED)),
            }
        )
    )
    return {queue: counts[queue] for queue in queues}


def user_has_submitted(user, study: Study) -> bool:
    return Read.objects.filter(study=study, reader=user, status=Read.Status.SUBMITTED).exists()


def reads_visible_to(*, user, study: Study) -> list[Read]:
    """The reads of a study this user may see.

    - Technologists, auditors and admins: none (auditors see reads only in the audit trail).
    - Your own reads: always.
    - Other people's reads: once you have submitted a read of this study yourself, or, for a lead radiologist,
      once the study is in arbitration or final. Anyone who might still give a read of this study (a reader
      with an unfinished read, a radiologist who has not read it) sees no other read, so the second reader is
      blind to the first until their own read is in.
    """
    if not role_can(user, Capability.STUDY_READ):
        return []
    reads = list(
        study.reads.select_related("reader").prefetch_related("assessments", "technical_recalls", "addenda__author")
    )
    sees_all = user_has_submitted(user, study) or (
        role_can(user, Capability.ARBITRATE) and study.status in (Study.Status.ARBITRATION, Study.Status.FINAL)
        and not any(r.reader_id == user.pk and not r.is_submitted for r in reads)
    )  # fmt: skip
    return [r for r in reads if r.reader_id == user.pk or (sees_all and r.is_submitted)]


def queue_ai_access(*, user, queue: str) -> bool:
    """Whether the AI's suspicion may be shown (and sorted on) in a worklist queue (cases.ai_visibility's rule): in
    the queues of studies the user may still read, or is reading, only when reads see the AI; always in arbitration
    and completed."""
    if not role_can(user, Capability.PREDICTION_VIEW):
        return False
    if ai_suspended():
        return False
    if queue in (Queue.ARBITRATION, Queue.COMPLETED):
        return True
    return not reads_are_unaided()
