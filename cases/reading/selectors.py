"""Reads for the reading workflow's pages and API: who holds which read, who may claim, whom a lead may assign,
which outcomes a user may see. What a read says is never returned here: that goes through
cases.reading.worklist.reads_visible_to (blinding)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet

from accounts.roles import MATRIX, Capability, role_can
from cases.models import Outcome, Read, Study


def _require(user, capability: Capability) -> None:
    if not role_can(user, capability):
        raise PermissionDenied(f"Your role does not allow this ({capability}).")


def study_read_slots(*, user, study: Study) -> list[dict]:
    """Who holds the first and second read of a study and whether it is finished: what a lead needs to assign or
    reassign reads. Metadata only, never a read's content (that goes through reads_visible_to)."""
    _require(user, Capability.READ_ASSIGN)
    reads = Read.objects.filter(study=study, kind__in=Read.DOUBLE).select_related("reader").order_by("kind")
    return [
        {"id": r.pk, "kind": r.kind, "kind_display": r.get_kind_display(), "reader": r.reader, "status": r.status}
        for r in reads
    ]


def study_claimable_by(*, user, study: Study) -> bool:
    """Whether a Claim button makes sense: a readable study with a free read and none of the user's."""
    if not role_can(user, Capability.STUDY_READ) or study.status not in Study.READABLE:
        return False
    readers = list(Read.objects.filter(study=study, kind__in=Read.DOUBLE).values_list("reader_id", flat=True))
    return user.pk not in readers and len(readers) < len(Read.DOUBLE)


def reader_choices() -> QuerySet:
    """Active users whose role may read studies (the people a lead can assign a read to)."""
    roles = [role for role, capabilities in MATRIX.items() if Capability.STUDY_READ in capabilities]
    return get_user_model().objects.filter(role__in=roles, is_active=True).order_by("username")


def outcomes_visible_to(*, user, study: Study) -> list[Outcome]:
    """Recorded outcomes (ground truth). Leads always; other radiologists once the study is final, so that an
    outcome never biases a read still to be given; everyone else never."""
    if not (
        role_can(user, Capability.OUTCOME_RECORD)
        or (role_can(user, Capability.STUDY_READ) and study.status == Study.Status.FINAL)
    ):
        return []
    return list(Outcome.objects.filter(study=study).select_related("recorded_by").order_by("-laterality"))


def screening_outcome_visible_to(*, user, study: Study) -> dict | None:
    """What the final study decided, for those who may see its reads once it is final (radiologists and leads): the
    screening result (routine recall, technical recall, recall for assessment), the views to be taken again and why,
    and the final reader density with the woman's MQSA statement. None before the study is final, or for others."""
    from cases.reading.density import final_reader_density
    from cases.reading.technical_recall import ScreeningResult, screening_result, views_to_repeat

    if study.status != Study.Status.FINAL or not role_can(user, Capability.STUDY_READ):
        return None
    reads = list(study.reads.prefetch_related("technical_recalls"))
    result = screening_result(study, reads=reads)
    density = final_reader_density(study, reads=reads)
    return {
        "result": result,
        "result_label": ScreeningResult.LABELS.get(result, ""),
        "views_to_repeat": [
            {
                "laterality": t.laterality,
                "view": t.view,
                "reason": t.reason,
                "reason_display": t.get_reason_display(),
                "detail": t.detail,
            }  # fmt: skip
            for t in views_to_repeat(study, reads=reads)
        ],
        "density": density.as_dict() if density else None,
    }
