"""Independent double reading with arbitration: submitting reads, addenda, arbitration and outcomes (who holds a
read, drafts and releases: cases.reading.claims). Each write locks the study row, so two readers acting at the
same moment are serialised.

Rules (radiologists expect these; docs/workflow.md repeats them):
- each study gets a first and a second read from two different radiologists; one person never gives both;
- a screening read gives BI-RADS 0, 1, 2, 4 or 5; recall follows from it and agreement with the AI follows from
  the recall and the AI's call (cases.reading.rules; the database checks the first two);
- a submitted read is immutable; corrections are addenda;
- every read records the exam's breast density (cases.reading.density) and may ask for views to be taken again
  (technical recall, cases.reading.technical_recall);
- when both reads agree on recall for every breast the study is final; otherwise it goes to arbitration, decided
  by a lead radiologist who gave neither read (the site's ARBITRATION_POLICY may send more studies to arbitration:
  every recall, or every non-normal read);
- every read, override of the AI, arbitration and outcome is audited.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.roles import Capability, role_can
from audit.services import audit_record
from cases.ai_visibility import ai_access
from cases.models import BreastAssessment, Image, Outcome, Read, ReadAddendum, ReadingSession, StrategyReport, Study
from cases.performance.strategy_services import strategy_report_request
from cases.reading import rules
from cases.reading.claims import require_capability, study_breasts, study_locked
from cases.reading.density import density_problem
from cases.reading.technical_recall import (
    TechnicalRecallInput,
    technical_recalls_store,
    technical_recalls_validated,
)
from cases.studies.services import study_transition
from core.errors import ApplicationError

SIDE_NAMES = {"R": "Right", "L": "Left"}


@dataclass(frozen=True)
class AssessmentInput:
    """One breast's assessment as given. recall and ai_agreement follow from BI-RADS and the AI's call
    (cases.reading.rules): left out (None, '') they are derived; given, they must say the same."""

    laterality: str
    birads: int
    recall: bool | None = None
    ai_agreement: str = ""
    override_reason: str = ""
    mark_image_id: int | None = None
    mark_row: float | None = None
    mark_column: float | None = None


def _birads_and_recall(item: AssessmentInput) -> bool:
    """The recall that follows from the item's BI-RADS; refuses a non-screening category or a contradiction."""
    side = SIDE_NAMES.get(item.laterality, item.laterality)
    problem = rules.birads_problem(item.birads)
    if problem:
        raise ApplicationError(f"{side} breast: {problem}")
    recall = rules.recall_for(item.birads)
    if item.recall is not None and item.recall != recall:
        raise ApplicationError(
            f"{side} breast: BI-RADS {item.birads} means {rules.recall_words(recall)}, not "
            f"{rules.recall_words(item.recall)}. Recall follows from BI-RADS: 0, 4 and 5 recall; 1 and 2 do not."
        )
    return recall


def ai_calls(study: Study, *, user) -> dict[str, str]:
    """Per breast, the AI's call as this user meets it in this study (cases.reading.rules: positive, negative,
    no_call, not_shown), from the same per-breast summary the reading pages show."""
    from cases.studies import selectors

    if not role_can(user, Capability.PREDICTION_VIEW):
        return {}
    summary = selectors.breast_summary(selectors.study_get(user=user, pk=study.pk), user=user)
    return {breast["laterality"]: rules.ai_call(breast) for breast in summary}


def _validate_assessments(study: Study, read: Read, assessments: list[AssessmentInput]) -> list[AssessmentInput]:
    """The assessments with their recall and AI agreement derived (cases.reading.rules), or ApplicationError."""
    breasts = study_breasts(study)
    given = [a.laterality for a in assessments]
    if sorted(given) != sorted(breasts):
        names = ", ".join({"R": "right", "L": "left"}[b] for b in breasts)
        raise ApplicationError(f"Give one assessment for each imaged breast ({names}).")
    calls = ai_calls(study, user=read.reader) if read.ai_available else {}
    resolved = []
    for item in assessments:
        side = SIDE_NAMES[item.laterality]
        recall = _birads_and_recall(item)
        call = calls.get(item.laterality, rules.AI_NOT_SHOWN)
        agreement = rules.agreement_for(recall=recall, call=call)
        if not rules.agreement_matches(item.ai_agreement, agreement):
            if call == rules.AI_NOT_SHOWN:
                # Agreeing with (or overriding) an AI result the reader never saw would corrupt the record.
                why = "no AI result was shown for this breast; leave AI agreement out"
            elif call == rules.AI_NO_CALL:
                why = "the AI model is not validated: its research score makes no call to agree with or override"
            else:
                why = (
                    f"the AI's call is {'positive' if call == rules.AI_POSITIVE else 'negative'} and your "
                    f"BI-RADS {item.birads} means {rules.recall_words(recall)}, so this is "
                    f"{'agreement with' if agreement == rules.Agreement.AGREE else 'an override of'} the AI"
                )
            raise ApplicationError(f"{side} breast: {why}. Agreement with the AI follows from your decision.")
        if agreement == rules.Agreement.OVERRIDE and not item.override_reason.strip():
            raise ApplicationError(
                f"{side} breast: your decision ({rules.recall_words(recall)}) overrides the AI's "
                f"{'positive' if call == rules.AI_POSITIVE else 'negative'} call: a reason is required."
            )
        if item.mark_image_id is not None:
            image = Image.objects.filter(pk=item.mark_image_id, study=study).first()
            if image is None or image.laterality != item.laterality:
                raise ApplicationError(f"{side} breast: the mark must be on an image of that breast.")
            row, column = item.mark_row, item.mark_column
            # Explicit None checks: row or column 0 is a valid pixel.
            if row is None or column is None or not (0 <= row < image.rows and 0 <= column < image.columns):
                raise ApplicationError(f"{side} breast: the mark lies outside the image.")
        resolved.append(replace(item, recall=recall, ai_agreement=agreement))
    return resolved


def _store_assessments(read: Read, assessments: list[AssessmentInput]) -> list[BreastAssessment]:
    stored = []
    for item in assessments:
        agreement = item.ai_agreement  # derived by _validate_assessments
        stored.append(
            BreastAssessment.objects.create(
                read=read,
                laterality=item.laterality,
                birads=item.birads,
                recall=item.recall,
                ai_agreement=agreement,
                override_reason=item.override_reason.strip() if agreement == "override" else "",
                mark_image_id=item.mark_image_id,
                mark_row=item.mark_row if item.mark_image_id else None,
                mark_column=item.mark_column if item.mark_image_id else None,
            )
        )
    return stored


def _require_density(density: str) -> None:
    problem = density_problem(density)
    if problem:
        raise ApplicationError(problem)


def _audit_read(action: str, read: Read, stored: list[BreastAssessment]) -> None:
    audit_record(
        action=action,
        actor=read.reader,
        obj=read,
        study_id=read.study_id,
        details={
            "kind": read.kind,
            "ai_available": read.ai_available,
            "ai_first_shown_at": read.ai_first_shown_at.isoformat() if read.ai_first_shown_at else None,
            "recall": read.recall,
            "density": read.density,
            "technical_recalls": [
                {"laterality": t.laterality, "view": t.view, "reason": t.reason, "detail": t.detail}
                for t in read.technical_recalls.all()
            ],
            "breasts": [
                {
                    "laterality": a.laterality,
                    "birads": a.birads,
                    "recall": a.recall,
                    "ai_agreement": a.ai_agreement,
                    **({"mark": [a.mark_image_id, a.mark_row, a.mark_column]} if a.mark_image_id else {}),
                }
                for a in stored
            ],
            "comments": read.comments,
        },
    )
    for a in stored:
        if a.ai_agreement == BreastAssessment.Agreement.OVERRIDE:
            audit_record(
                action="ai.overridden",
                actor=read.reader,
                obj=a,
                study_id=read.study_id,
                details={"read_id": read.pk, "laterality": a.laterality, "reason": a.override_reason},
            )


@transaction.atomic
def read_submit(
    *,
    read_id: int,
    user,
    assessments: list[AssessmentInput],
    density: str,
    technical_recalls: list[TechnicalRecallInput] = (),
    comments: str = "",
) -> Read:
    """Submit a first or second read: BI-RADS per breast (recall and agreement with the AI follow), the exam's breast
    density (required), any views to be taken again (technical recall) and comments."""
    read = Read.objects.select_related("study").filter(pk=read_id).first()
    if read is None:
        raise ApplicationError("No such read.")
    study = study_locked(read.study_id)
    read = Read.objects.select_for_update().get(pk=read_id)
    if read.reader_id != user.pk:
        raise ApplicationError("Only the radiologist holding this read can submit it.")
    if read.is_submitted:
        raise ApplicationError("This read was already submitted; add an addendum to correct it.")
    if read.kind not in Read.DOUBLE:
        raise ApplicationError("Use the arbitration form for arbitration.")
    if read.ai_locked:
        raise ApplicationError("Record your first impression first; the AI is shown after it, then you submit.")
    validated = _validate_assessments(study, read, assessments)
    _require_density(density)
    repeats = technical_recalls_validated(study, list(technical_recalls))
    stored = _store_assessments(read, validated)
    technical_recalls_store(read, repeats)
    read.status, read.submitted_at = Read.Status.SUBMITTED, timezone.now()
    read.comments = comments.strip()
    read.recall = any(a.recall for a in stored)
    read.density = density
    read.draft = None  # the submitted assessments are the record now
    # The reading session open as the read is given (cases.reading.sessions), if any.
    read.session = ReadingSession.objects.filter(reader=user, ended_at__isnull=True).first()
    read.save(update_fields=["status", "submitted_at", "comments", "recall", "density", "draft", "session"])
    _audit_read("read.submitted", read, stored)
    _after_double_read(study)
    return read


@transaction.atomic
def read_first_impression_record(*, read_id: int, user, impressions: list[AssessmentInput]) -> Read:
    """Record the reader's first impression (BI-RADS and recall per breast, before any AI) of a read given with
    AI_REVEAL after_first_impression; the AI is shown from then on. Recorded once, audited."""
    read = Read.objects.filter(pk=read_id).first()
    if read is None:
        raise ApplicationError("No such read.")
    study = study_locked(read.study_id)
    read = Read.objects.select_for_update().get(pk=read_id)
    if read.reader_id != user.pk:
        raise ApplicationError("Only the radiologist holding this read can record its first impression.")
    if read.is_submitted:
        raise ApplicationError("This read was already submitted.")
    if read.ai_reveal != Read.AiReveal.AFTER_FIRST_IMPRESSION:
        raise ApplicationError("This read does not ask for a first impression before the AI.")
    if read.first_impression_at is not None:
        raise ApplicationError("The first impression of this read is already recorded.")
    breasts = study_breasts(study)
    if sorted(i.laterality for i in impressions) != sorted(breasts):
        raise ApplicationError("Give a first impression for each imaged breast.")
    recalls = {item.laterality: _birads_and_recall(item) for item in impressions}
    read.first_impression = {i.laterality: {"birads": i.birads, "recall": recalls[i.laterality]} for i in impressions}
    read.first_impression_at = timezone.now()
    read.save(update_fields=["first_impression", "first_impression_at"])
    audit_record(
        action="read.first_impression",
        actor=user,
        obj=read,
        study_id=study.pk,
        details={"kind": read.kind, "breasts": read.first_impression},
    )
    return read


AI_REVEAL_SOURCES = ("switch", "opened")  # the viewer's AI switch (or key A); the page opening with the AI on


@transaction.atomic
def read_ai_reveal_record(*, read_id: int, user, source: str) -> Read:
    """Record that the reader now has the AI on screen in their read in progress: the time of the first reveal is
    kept (later ones change nothing) and audited once as read.ai_revealed. Called by the viewer's AI switch (which
    shows the heatmaps and the per-breast AI panel together) and by the read page when AI_REVEAL opens the read
    with the AI on. Only the read's own reader (PermissionDenied for anyone else); only where the AI may be shown
    to them now (ApplicationError otherwise: a read without the AI, one waiting for its first impression, a
    submitted read)."""
    read = Read.objects.select_for_update().filter(pk=read_id).first()
    if read is None:
        raise ApplicationError("No such read.")
    if read.reader_id != user.pk:
        raise PermissionDenied("Only the radiologist holding this read can record what they were shown.")
    if source not in AI_REVEAL_SOURCES:
        raise ApplicationError(f"Unknown source {source!r}: one of {', '.join(AI_REVEAL_SOURCES)}.")
    if read.kind not in Read.DOUBLE or read.is_submitted:
        raise ApplicationError("Only a first or second read in progress records when the AI was revealed.")
    access = ai_access(user=user, study=read.study, read=read)  # cases.ai_visibility: the one rule
    if not access.shown:
        raise ApplicationError(access.reason)
    if read.ai_first_shown_at is None:
        read.ai_first_shown_at = timezone.now()
        read.save(update_fields=["ai_first_shown_at"])
        audit_record(
            action="read.ai_revealed",
            actor=user,
            obj=read,
            study_id=read.study_id,
            details={"kind": read.kind, "ai_reveal": read.ai_reveal, "source": source},
        )
    return read


def reads_concordant(first: Read, second: Read) -> bool:
    """Concordant when the two readers made the same recall decision for every breast."""
    a = {x.laterality: x.recall for x in first.assessments.all()}
    b = {x.laterality: x.recall for x in second.assessments.all()}
    return a == b


def arbitration_needed(first: Read, second: Read, *, policy: str | None = None) -> bool:
    """Whether two submitted reads go to arbitration under the site's policy (ARBITRATION_POLICY):

    - discordant: only when the readers' recall decisions differ for a breast;
    - every_recall: also whenever either reader recalls (a third reader confirms every recall);
    - every_non_normal: also whenever either reader gives any breast a BI-RADS other than 1 (negative), or asks for
      a technical recall."""
    policy = policy or settings.ARBITRATION_POLICY
    if not reads_concordant(first, second):
        return True
    if policy == "every_recall":
        return bool(first.recall or second.recall)
    if policy == "every_non_normal":
        non_normal = any(a.birads != 1 for read in (first, second) for a in read.assessments.all())
        return non_normal or any(read.technical_recalls.exists() for read in (first, second))
    return False


def _after_double_read(study: Study) -> None:
    reads = {r.kind: r for r in study.reads.filter(kind__in=Read.DOUBLE, status=Read.Status.SUBMITTED)}
    if len(reads) < 2:
        return
    first, second = reads[Read.Kind.FIRST], reads[Read.Kind.SECOND]
    if arbitration_needed(first, second):
        study_transition(study=study, status=Study.Status.ARBITRATION)
    else:
        study_transition(study=study, status=Study.Status.FINAL, recall=bool(first.recall))


@transaction.atomic
def arbitration_submit(
    *,
    study_id: int,
    user,
    assessments: list[AssessmentInput],
    density: str,
    technical_recalls: list[TechnicalRecallInput] = (),
    comments: str = "",
) -> Read:
    """The arbitration of a study: it decides recall per breast, the breast density and the views to take again."""
    require_capability(user, Capability.ARBITRATE)
    study = study_locked(study_id)
    if study.status != Study.Status.ARBITRATION:
        raise ApplicationError(f"This study is not awaiting arbitration ({study.get_status_display()}).")
    if study.reads.filter(kind__in=Read.DOUBLE, reader=user).exists():
        raise ApplicationError("Arbitration must come from a lead radiologist who gave neither read.")
    try:
        with transaction.atomic():
            read = Read.objects.create(
                study=study,
                kind=Read.Kind.ARBITRATION,
                reader=user,
                ai_available=True,
                # The arbitrator sees both reads anyway: no first impression is asked, the AI is behind its switch.
                ai_reveal=Read.AiReveal.OPEN if settings.AI_REVEAL == "open" else Read.AiReveal.ON_REQUEST,
                comments=comments.strip(),
            )
    except IntegrityError:
        raise ApplicationError("This study has already been arbitrated.") from None
    validated = _validate_assessments(study, read, assessments)
    _require_density(density)
    repeats = technical_recalls_validated(study, list(technical_recalls))
    stored = _store_assessments(read, validated)
    technical_recalls_store(read, repeats)
    read.status, read.submitted_at = Read.Status.SUBMITTED, timezone.now()
    read.recall = any(a.recall for a in stored)
    read.density = density
    read.save(update_fields=["status", "submitted_at", "recall", "density"])
    _audit_read("arbitration.submitted", read, stored)
    study_transition(study=study, status=Study.Status.FINAL, recall=read.recall)
    return read


@transaction.atomic
def read_addendum_create(*, read_id: int, user, text: str) -> ReadAddendum:
    read = Read.objects.select_for_update().filter(pk=read_id).first()
    if read is None:
        raise ApplicationError("No such read.")
    if read.reader_id != user.pk:
        # Not a mistake in the input (400) but someone else's record: refused as such (403), page and API alike.
        raise PermissionDenied("Only the author of a read can add an addendum to it.")
    if not read.is_submitted:
        raise ApplicationError("The read is not submitted yet; edit it instead.")
    if not text.strip():
        raise ApplicationError("The addendum is empty.")
    addendum = ReadAddendum.objects.create(read=read, author=user, text=text.strip())
    audit_record(
        action="read.addendum",
        actor=user,
        obj=addendum,
        study_id=read.study_id,
        details={"read_id": read.pk, "text": addendum.text},
    )
    return addendum


@transaction.atomic
def outcome_record(*, study_id: int, laterality: str, truth: str, user, note: str = "") -> Outcome:
    require_capability(user, Capability.OUTCOME_RECORD)
    study = study_locked(study_id)
    if laterality not in study_breasts(study):
        raise ApplicationError("This study has no images of that breast.")
    if truth not in Outcome.Truth.values:
        raise ApplicationError(f"Unknown outcome {truth!r}.")
    previous = Outcome.objects.filter(study=study, laterality=laterality).first()
    outcome, _ = Outcome.objects.update_or_create(
        study=study, laterality=laterality, defaults={"truth": truth, "note": note.strip(), "recorded_by": user}
    )
    audit_record(
        action="outcome.recorded",
        actor=user,
        obj=outcome,
        study_id=study.pk,
        details={
            "laterality": laterality,
            "truth": truth,
            "previous": previous.truth if previous else None,
            "note": outcome.note,
        },
    )
    if previous is None or previous.truth != truth:
        # The strategies report replays outcomes: recomputed in the worker once this outcome is committed.
        strategy_report_request(user=user, trigger=StrategyReport.Trigger.OUTCOME)
    return outcome
