"""Technical recall: a reader asks for views to be taken again (positioning, motion, exposure...), apart from recall
for assessment. The woman comes back for those views, not for work-up; it is counted apart on the performance page.

Which views the study's result asks again: the arbitration's when the study was arbitrated, else every view either
reader asked (one reader seeing a blurred view is enough to take it again). The study's screening result is recall
for assessment when the final decision recalls, else technical recall when any view is to be taken again, else
routine recall (the next routine screen).
"""

from __future__ import annotations

from dataclasses import dataclass

from cases.models import Read, Study, TechnicalRecall
from core.errors import ApplicationError

SIDE_NAMES = {"R": "Right", "L": "Left"}


@dataclass(frozen=True)
class TechnicalRecallInput:
    laterality: str
    view: str
    reason: str
    detail: str = ""


def technical_recalls_validated(study: Study, items: list[TechnicalRecallInput]) -> list[TechnicalRecallInput]:
    """The items, each naming a view the study has and a known reason ("other" described), or ApplicationError."""
    views = {(image.laterality, image.view) for image in study.images.all()}
    seen = set()
    for item in items:
        where = f"{SIDE_NAMES.get(item.laterality, item.laterality)} {item.view}"
        if (item.laterality, item.view) not in views:
            raise ApplicationError(f"Technical recall of {where}: this study has no such view.")
        if (item.laterality, item.view) in seen:
            raise ApplicationError(f"Technical recall of {where} is given twice.")
        seen.add((item.laterality, item.view))
        if item.reason not in TechnicalRecall.Reason.values:
            raise ApplicationError(f"Technical recall of {where}: choose a reason.")
        if item.reason == TechnicalRecall.Reason.OTHER and not item.detail.strip():
            raise ApplicationError(f"Technical recall of {where}: describe the reason ('Other').")
    return items


def technical_recalls_store(read: Read, items: list[TechnicalRecallInput]) -> list[TechnicalRecall]:
    return [
        TechnicalRecall.objects.create(
            read=read, laterality=item.laterality, view=item.view, reason=item.reason, detail=item.detail.strip()[:300]
        )
        for item in items
    ]


class ScreeningResult:
    ROUTINE = "routine_recall"
    TECHNICAL = "technical_recall"
    ASSESSMENT = "recall_for_assessment"
    LABELS = {
        ROUTINE: "Routine recall: next screening invitation",
        TECHNICAL: "Technical recall: some views to be taken again",
        ASSESSMENT: "Recall for assessment",
    }


def views_to_repeat(study: Study, *, reads: list[Read] | None = None) -> list[TechnicalRecall]:
    """The technical recalls that stand for a final study (the module's rule); [] before it is final. `reads` may be
    the study's prefetched reads (with their technical_recalls)."""
    if study.status != Study.Status.FINAL:
        return []
    reads = [r for r in (reads if reads is not None else study.reads.all()) if r.is_submitted]
    arbitration = [r for r in reads if r.kind == Read.Kind.ARBITRATION]
    deciding = arbitration or [r for r in reads if r.kind in Read.DOUBLE]
    found: dict[tuple[str, str], TechnicalRecall] = {}
    for read in deciding:
        for item in read.technical_recalls.all():
            found.setdefault((item.laterality, item.view), item)
    return [found[key] for key in sorted(found)]


def screening_result(study: Study, *, reads: list[Read] | None = None) -> str | None:
    """routine_recall, technical_recall or recall_for_assessment for a final study, else None."""
    if study.status != Study.Status.FINAL or study.final_recall is None:
        return None
    if study.final_recall:
        return ScreeningResult.ASSESSMENT
    return ScreeningResult.TECHNICAL if views_to_repeat(study, reads=reads) else ScreeningResult.ROUTINE
