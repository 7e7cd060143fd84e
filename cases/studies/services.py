"""The study's status flow: the one place a study's status changes (and is audited), and the refresh that moves a
study along as its images' analyses progress (cases.studies.receivers calls it)."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F, Max, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from audit.services import audit_record
from cases.models import Study
from core.errors import ApplicationError
from inference.models import InferenceJob, Prediction


def study_transition(*, study: Study, status: str, recall: bool | None = None) -> Study:
    """The one place a study's status changes (and is audited). Call inside a transaction."""
    if status == study.status:
        return study
    if status not in Study.ALLOWED[study.status]:
        raise ApplicationError(f"Study {study.pk}: {study.get_status_display()} -> {status} is not allowed.")
    previous = study.status
    study.status = status
    fields = ["status", "updated_at"]
    if status == Study.Status.FINAL:
        study.final_recall, study.finalised_at = recall, timezone.now()
        fields += ["final_recall", "finalised_at"]
    study.save(update_fields=fields)
    audit_record(
        action="study.status_changed",
        obj=study,
        study_id=study.pk,
        details={"from": previous, "to": status, **({"final_recall": recall} if status == Study.Status.FINAL else {})},
    )
    return study


@transaction.atomic(savepoint=False)
def study_status_refresh(*, study_id: int, changed_job: InferenceJob | None = None) -> Study:
    """Move a study between 'uploaded', 'processing' and 'awaiting reads' from its images' analyses.
    `changed_job`: one of its jobs, whose status the caller just changed (inference.serving.signals): the study has
    jobs, and when that one is unfinished the study is processing without looking at the others.

    Later states (arbitration, final) are set by the reading workflow (cases.reading.services) and not touched here.
    """
    # Lock the study: two images finishing at once must not each see the other still running (READ COMMITTED
    # re-reads the jobs below after the lock is granted, so the second one sees the first's result).
    study = Study.objects.select_for_update().get(pk=study_id)
    if study.status not in (Study.Status.UPLOADED, Study.Status.PROCESSING, Study.Status.AWAITING_READS):
        return study
    jobs = InferenceJob.objects.filter(image__study=study)
    if changed_job is not None and not changed_job.is_finished:
        new = Study.Status.PROCESSING
    elif changed_job is None and not jobs.exists():
        new = Study.Status.UPLOADED
    elif jobs.exclude(status__in=[InferenceJob.Status.SUCCEEDED, InferenceJob.Status.FAILED]).exists():
        new = Study.Status.PROCESSING
    else:
        new = Study.Status.AWAITING_READS
    if new != study.status and new in Study.ALLOWED[study.status]:
        study_transition(study=study, status=new)
    return study


def study_ai_suspicion_refresh(*, study_id: int) -> None:
    """Keep Study.ai_suspicion, the highest probability of the study's predictions, in step (one UPDATE); called
    when a prediction is stored or removed (cases.studies.receivers)."""
    Study.objects.filter(pk=study_id).update(ai_suspicion=Subquery(highest_probability()))


def study_ai_suspicion_raise(*, study_id: int, probability: float) -> None:
    """A new prediction: the study's AI suspicion becomes its probability where that is higher (one UPDATE, no
    aggregate over the study's predictions)."""
    current = Coalesce(F("ai_suspicion"), Value(probability))
    Study.objects.filter(pk=study_id).update(ai_suspicion=Greatest(current, Value(probability)))


def highest_probability():
    """The highest probability of the predictions of the study in OuterRef('pk') (the worklist's AI suspicion)."""
    return (
        Prediction.objects.filter(image__study=OuterRef("pk"))
        .values("image__study")
        .annotate(top=Max("probability"))
        .values("top")[:1]
    )
