"""Who holds a read: claiming the next free read, a lead's assignment and hand-over, releasing a read in progress,
and the reader's draft of it. Submitting reads, arbitration, addenda and outcomes are in cases.reading.services.
Each write locks the study row, so two readers acting at the same moment are serialised.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from accounts.roles import Capability, role_can
from audit.services import audit_record
from cases.models import Read, Study
from core.errors import ApplicationError


def require_capability(user, capability: Capability) -> None:
    if not role_can(user, capability):
        raise PermissionDenied(f"Your role does not allow this ({capability}).")


def study_locked(study_id: int) -> Study:
    study = Study.objects.select_for_update().filter(pk=study_id).first()
    if study is None:
        raise ApplicationError("No such study.")
    return study


def _ai_settings() -> dict:
    """A new read's AI fields, from the settings at claim time (kept on the read: a later change of the settings
    never changes how a read in progress is given). A suspended model (cases.ai_visibility.ai_suspended): unaided."""
    from cases.ai_visibility import ai_suspended

    if not settings.READERS_SEE_AI or ai_suspended():
        return {"ai_available": False, "ai_reveal": Read.AiReveal.NONE}
    return {"ai_available": True, "ai_reveal": settings.AI_REVEAL}


def _next_kind(study: Study, reader) -> str:
    reads = {read.kind: read for read in study.reads.filter(kind__in=Read.DOUBLE)}
    if any(read.reader_id == reader.pk for read in reads.values()):
        raise ApplicationError(
            f"{reader} already holds a read of this study; the other read must come from another radiologist."
        )
    if Read.Kind.FIRST not in reads:
        return Read.Kind.FIRST
    if Read.Kind.SECOND not in reads:
        return Read.Kind.SECOND
    raise ApplicationError("Both reads of this study are already taken.")


@transaction.atomic
def read_claim(*, study_id: int, user) -> Read:
    """Take the next free read (first, then second) of a study for yourself. Resumes your own unfinished read."""
    require_capability(user, Capability.STUDY_READ)
    study = study_locked(study_id)
    own = study.reads.filter(reader=user, kind__in=Read.DOUBLE).first()
    if own is not None and not own.is_submitted:
        return own
    if study.status not in Study.READABLE:
        raise ApplicationError(f"This study cannot be read now ({study.get_status_display()}).")
    kind = _next_kind(study, user)
    read = Read.objects.create(study=study, kind=kind, reader=user, **_ai_settings())
    audit_record(
        action="read.claimed", actor=user, obj=read, study_id=study.pk, details={"kind": kind, "ai": read.ai_reveal}
    )
    return read


@transaction.atomic
def read_assign(*, study_id: int, reader, by, read_id: int | None = None) -> Read:
    """A lead gives the next free read to a radiologist, or hands an unfinished read over to another one.

    With read_id, that unfinished read is handed over; without it the next free read is given, or, when both
    reads are taken, the unfinished one.
    """
    require_capability(by, Capability.READ_ASSIGN)
    if not role_can(reader, Capability.STUDY_READ):
        raise ApplicationError(f"{reader} is not a radiologist and cannot read studies.")
    study = study_locked(study_id)
    if study.status not in Study.READABLE:
        raise ApplicationError(f"This study cannot be assigned now ({study.get_status_display()}).")
    if read_id is not None:
        chosen = study.reads.filter(pk=read_id, kind__in=Read.DOUBLE).first()
        if chosen is None:
            raise ApplicationError("No such read of this study.")
        if chosen.is_submitted:
            raise ApplicationError("A submitted read cannot be reassigned; its author can add an addendum.")
        if chosen.reader_id == reader.pk:
            raise ApplicationError(f"{reader} already holds this read.")
        return _reassign(study, chosen, reader=reader, by=by)
    unfinished = study.reads.filter(kind__in=Read.DOUBLE, status=Read.Status.IN_PROGRESS).exclude(reader=reader).first()
    free = _free_kind(study)
    if free is None and unfinished is not None:
        return _reassign(study, unfinished, reader=reader, by=by)
    kind = _next_kind(study, reader)
    read = Read.objects.create(study=study, kind=kind, reader=reader, assigned_by=by, **_ai_settings())
    audit_record(
        action="read.assigned", actor=by, obj=read, study_id=study.pk, details={"kind": kind, "to": reader.username}
    )
    return read


def _reassign(study: Study, unfinished: Read, *, reader, by) -> Read:
    # The reader gets the unfinished read's slot; their colleague's draft is not carried over.
    if study.reads.filter(kind__in=Read.DOUBLE, reader=reader).exists():
        raise ApplicationError(f"{reader} already holds the other read of this study.")
    previous = unfinished.reader
    unfinished.reader, unfinished.assigned_by = reader, by
    unfinished.claimed_at = timezone.now()
    unfinished.draft, unfinished.draft_saved_at = None, None
    unfinished.save(update_fields=["reader", "assigned_by", "claimed_at", "draft", "draft_saved_at"])
    audit_record(
        action="read.reassigned",
        actor=by,
        obj=unfinished,
        study_id=study.pk,
        details={"kind": unfinished.kind, "from": previous.username, "to": reader.username},
    )
    return unfinished


@transaction.atomic
def read_release(*, read_id: int, user) -> None:
    """Give up a read in progress: it is removed (with its draft) so that another radiologist can claim it.

    Its own reader may release it. So may a lead radiologist (READ_ASSIGN): a lead can already hand an unfinished
    read over to someone else, and a read held by an absent colleague must not block the study until the lead
    picks a successor. Nobody else (PermissionDenied). Audited as read.released, with who held it.
    """
    read = Read.objects.filter(pk=read_id).first()
    if read is None:
        raise ApplicationError("No such read.")
    study = study_locked(read.study_id)
    read = Read.objects.select_for_update().select_related("reader").get(pk=read_id)
    as_lead = read.reader_id != user.pk
    if as_lead and not role_can(user, Capability.READ_ASSIGN):
        raise PermissionDenied("Only the radiologist holding this read (or a lead radiologist) can release it.")
    if read.kind not in Read.DOUBLE:
        raise ApplicationError("Only a first or second read can be released.")
    if read.is_submitted:
        raise ApplicationError("A submitted read cannot be released; its author can add an addendum.")
    audit_record(
        action="read.released",
        actor=user,
        obj=read,
        study_id=study.pk,
        details={
            "kind": read.kind,
            "reader": read.reader.username,
            "by_lead": as_lead,
            "claimed_at": read.claimed_at.isoformat(),
            "had_draft": bool(read.draft),
        },
    )
    read.delete()


def _free_kind(study: Study) -> str | None:
    taken = set(study.reads.filter(kind__in=Read.DOUBLE).values_list("kind", flat=True))
    return next((kind for kind in Read.DOUBLE if kind not in taken), None)


def study_breasts(study: Study) -> list[str]:
    return sorted(set(study.images.values_list("laterality", flat=True)), reverse=True)  # R before L


DRAFT_BREAST_FIELDS = ("birads", "override_reason", "mark_image", "mark_row", "mark_column")


DRAFT_VALUE_MAX = 5000


@transaction.atomic
def read_draft_save(*, read_id: int, user, draft: dict) -> Read:
    """Keep the reader's unsubmitted form (field name -> text, as the read form names its fields) on the read, so
    that leaving the page loses nothing. Only the read's own reader, only while it is in progress. Not audited: a
    draft decides nothing (the browser saves it on every change); the submission that follows is audited in full.
    Unknown fields are dropped; values are kept as text and checked only on submission."""
    read = Read.objects.select_for_update().filter(pk=read_id).first()
    if read is None:
        raise ApplicationError("No such read.")
    if read.reader_id != user.pk:
        raise PermissionDenied("Only the radiologist holding this read can save its draft.")
    if read.is_submitted:
        raise ApplicationError("This read was already submitted; its draft can no longer change.")
    if not isinstance(draft, dict):
        raise ApplicationError("A draft is a set of form fields.")
    allowed = {"comments"} | {f"{side}-{name}" for side in study_breasts(read.study) for name in DRAFT_BREAST_FIELDS}
    kept = {}
    for key, value in draft.items():
        if key not in allowed:
            continue
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ApplicationError(f"Draft field {key}: expected text.")
        value = str(value)
        if len(value) > DRAFT_VALUE_MAX:
            raise ApplicationError(f"Draft field {key}: at most {DRAFT_VALUE_MAX} characters.")
        kept[key] = value
    read.draft, read.draft_saved_at = kept, timezone.now()
    read.save(update_fields=["draft", "draft_saved_at"])
    return read
