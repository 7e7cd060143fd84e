"""Reads for the screening-strategies report: the database turned into cases.performance.strategies records, and
the stored reports as pages and the API show them.

The records come from six queries whatever the number of studies: studies, those still awaiting a decision,
imaged breasts, outcomes, submitted assessments, and the model version's scores (the max over views taken in the
database). A completed screen is a study with a final decision and at least one breast outcome. A study whose
recorded reads do not explain its final decision is left out and counted by reason, never guessed at."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied
from django.db.models import Exists, Max, OuterRef
from django.utils import timezone

from accounts.roles import Capability, role_can
from cases.models import BreastAssessment, Image, Outcome, Read, StrategyReport, Study
from cases.performance.strategies import BreastRecord, Screen
from inference.models import ModelVersion, Prediction

NO_FIRST_READ = "no submitted first read"
READ_MISSING_A_BREAST = "a read does not assess every imaged breast"
DISCORDANT_WITHOUT_ARBITRATION = "discordant reads without an arbitration"
FINAL_NOT_FROM_READS = "final decision differs from the recorded reads"
AWAITING_DECISION = "outcome recorded, final decision not yet made"


@dataclass(frozen=True)
class ScreenSelection:
    screens: list[Screen]
    excluded: dict[str, int] = field(default_factory=dict)  # reason -> studies left out


def _require(user) -> None:
    if not role_can(user, Capability.PERFORMANCE_VIEW):
        raise PermissionDenied(f"Your role does not allow this ({Capability.PERFORMANCE_VIEW}).")


def strategy_screens(*, model_version: ModelVersion | None, predictions=None) -> ScreenSelection:
    """Every completed screen with an outcome, as records; AI scores from `model_version`'s predictions only.
    `predictions`: where to read them, Prediction.objects (readers' predictions, no shadow ones) unless the
    acceptance test asks for Prediction.all_objects (a model in shadow is what it measures)."""
    completed = Study.objects.filter(final_recall__isnull=False).filter(
        Exists(Outcome.objects.filter(study=OuterRef("pk")))
    )
    study_ids = completed.values("pk")
    studies = list(completed.values_list("pk", "patient_id", "study_date", "created_at", "final_recall"))
    imaged: dict[int, set[str]] = defaultdict(set)
    for study_id, laterality in Image.objects.filter(study__in=study_ids).values_list("study_id", "laterality"):
        imaged[study_id].add(laterality)
    truth = {
        (study_id, laterality): value
        for study_id, laterality, value in Outcome.objects.filter(study__in=study_ids).values_list(
            "study_id", "laterality", "truth"
        )
    }
    reads: dict[tuple[int, str], dict[str, bool]] = defaultdict(dict)  # (study, kind) -> laterality -> recall
    assessments = BreastAssessment.objects.filter(read__study__in=study_ids, read__status=Read.Status.SUBMITTED)
    for study_id, kind, laterality, recall in assessments.values_list(
        "read__study_id", "read__kind", "laterality", "recall"
    ):
        reads[(study_id, kind)][laterality] = recall
    scores: dict[tuple[int, str], float] = {}
    if model_version is not None:
        breast_scores = (
            (predictions if predictions is not None else Prediction.objects)
            .filter(model_version=model_version, image__study__in=study_ids)
            .values("image__study_id", "image__laterality")
            .annotate(score=Max("probability"))  # a breast's score: its most suspicious view
        )
        scores = {(row["image__study_id"], row["image__laterality"]): row["score"] for row in breast_scores}

    screens, excluded = [], Counter()
    awaiting = Study.objects.filter(final_recall__isnull=True, outcomes__isnull=False).distinct().count()
    if awaiting:
        excluded[AWAITING_DECISION] = awaiting
    for study_id, patient_id, study_date, created_at, final_recall in studies:
        sides = sorted(imaged[study_id], reverse=True)  # R before L
        first = reads.get((study_id, Read.Kind.FIRST))
        second = reads.get((study_id, Read.Kind.SECOND))
        arbitration = reads.get((study_id, Read.Kind.ARBITRATION))
        reason = _unexplained(sides, first, second, arbitration, final_recall)
        if reason:
            excluded[reason] += 1
            continue
        final = arbitration if arbitration is not None else first
        breasts = tuple(
            BreastRecord(
                laterality=side,
                first_recall=first[side],
                second_recall=second[side] if second is not None else None,
                arbitration_recall=arbitration[side] if arbitration is not None else None,
                final_recall=final[side],
                ai_score=scores.get((study_id, side)),
                truth=truth.get((study_id, side)),
            )
            for side in sides
        )
        scored = any(b.ai_score is not None for b in breasts)
        screens.append(
            Screen(
                woman_id=str(patient_id),
                study_id=study_id,
                screen_date=study_date or timezone.localdate(created_at),
                breasts=breasts,
                model_version=model_version.name if scored else None,
            )
        )
    return ScreenSelection(screens=screens, excluded=dict(excluded))


def _unexplained(sides, first, second, arbitration, final_recall: bool) -> str | None:
    """Why the recorded reads do not explain the study's final decision, or None when they do."""
    if first is None:
        return NO_FIRST_READ
    if any(read is not None and set(read) != set(sides) for read in (first, second, arbitration)):
        return READ_MISSING_A_BREAST
    if arbitration is None and second is not None and second != first:
        return DISCORDANT_WITHOUT_ARBITRATION
    final = arbitration if arbitration is not None else first
    if any(final.values()) != final_recall:
        return FINAL_NOT_FROM_READS
    return None


# ---- stored reports -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StrategyReportState:
    shown: StrategyReport | None  # the newest succeeded report
    pending: StrategyReport | None  # a newer one queued or computing
    failed: StrategyReport | None  # a newer one that failed


def strategy_report_state(*, user) -> StrategyReportState:
    _require(user)
    shown = StrategyReport.objects.filter(status=StrategyReport.Status.SUCCEEDED).first()
    newer = StrategyReport.objects.defer("figures", "triage_png", "safety_net_png")
    if shown is not None:
        newer = newer.filter(requested_at__gt=shown.requested_at)
    pending = newer.filter(status__in=(StrategyReport.Status.QUEUED, StrategyReport.Status.RUNNING)).first()
    failed = newer.filter(status=StrategyReport.Status.FAILED).first()
    return StrategyReportState(shown=shown, pending=pending, failed=failed)


def strategy_report_get(*, user, pk: int) -> StrategyReport | None:
    """A computed report by id (exports cite it), or None."""
    _require(user)
    return (
        StrategyReport.objects.select_related("model_version")
        .filter(pk=pk, status=StrategyReport.Status.SUCCEEDED)
        .first()
    )
