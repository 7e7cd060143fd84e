"""Screening performance against recorded outcomes: the AI per breast, each reader and the double-reading
programme per study, beside the BCSC benchmarks. Selectors take the requesting user and return plain dataclasses.

Ground truth is the Outcome rows (one per breast): malignant is positive; benign and normal at follow-up are
negative. Only studies with at least one outcome count; a study is cancer-positive when any breast is malignant.

- AI, per breast with an outcome: the breast's score is the highest calibrated probability among the current
  predictions of its images (the prediction of each image's most recent analysis, as the study page shows it: max
  over views, never the mean); the breast is called positive when that score reaches the threshold stored with
  that prediction.
- Readers, per study: each radiologist's submitted first and second reads; `read.recall` is the decision.
- Programme, per study: `Study.final_recall` (after concordance or arbitration).

Proportions carry Wilson score intervals and the AUC a stratified, seeded percentile bootstrap: both from
inference.metrics, the same functions the model evaluation reports use.

Cached (cases.performance.cache): even with the AUC bootstrap done by counting (inference.metrics.bootstrap_auc_ci,
the same interval as bootstrap_ci to the last bit), reading every outcome, read and current prediction takes about a
second at 10,000 studies, so the figures are computed once per state of the data they rest on and kept under a
fingerprint of that data (cache.data_fingerprint: one query of counts, highest ids and latest timestamps of outcomes,
submitted reads, analyses and final decisions). Any write that can change a figure changes the fingerprint, so a view
never shows figures older than the data; the next view after a change computes them again. Reader names are not
cached: they are read at each view, so a renamed user shows under the new name at once.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Subquery

from accounts.roles import Capability, role_can
from cases.models import Outcome, Read, Study
from cases.performance.cache import cached
from inference.benchmarks import BENCHMARKS
from inference.metrics import DEFAULT_BOOTSTRAP, bootstrap_auc_ci, roc_auc, wilson_ci
from inference.models import InferenceJob, Prediction

BOOTSTRAP_SEED = 0

# "Not enough data": a figure whose denominator holds fewer cases than this is withheld on the page (its counts are
# still shown), and the AUC and its ROC curve need this many malignant AND this many non-malignant breasts. Why 10:
# below it one case moves a sensitivity by more than 10 points and the 95 % interval spans most of 0-100 % (5 of 5
# is 57-100 %), and an AUC from 1 cancer and 1 non-cancer is 1.000 with a bootstrap "interval" of 1.000-1.000, which
# reads as certainty where there is none. It is the strategies page's minimum of cancers too (Minimums.cancers).
# One rule for every figure on the page: Proportion.enough and _enough_for_auc below.
MIN_CASES = 10


@dataclass(frozen=True)
class Benchmark:
    source: str
    sensitivity: float
    specificity: float
    recall_rate: float


# Lehman et al., Radiology 2017 (BCSC); sensitivity and specificity are the figures the model evaluation uses too.
BCSC = Benchmark(
    source=BENCHMARKS["bcsc"]["source"],
    sensitivity=BENCHMARKS["bcsc"]["sensitivity"],
    specificity=BENCHMARKS["bcsc"]["specificity"],
    recall_rate=BENCHMARKS["bcsc"]["recall_rate"],
)


@dataclass(frozen=True)
class Proportion:
    """`successes` of `total` with its 95 % Wilson interval; no estimate when `total` is 0."""

    successes: int
    total: int
    estimate: float | None
    low: float | None
    high: float | None
    minimum: int = MIN_CASES

    @property
    def enough(self) -> bool:
        """Whether the figure is worth showing: at least `minimum` cases behind it (the estimate exists from 1)."""
        return self.total > 0 and self.total >= self.minimum


def proportion(successes: int, total: int, minimum: int = MIN_CASES) -> Proportion:
    if total == 0:
        return Proportion(successes, 0, None, None, None, minimum)
    estimate = successes / total
    low, high = wilson_ci(successes, total)
    # At 0 % or 100 % rounding can leave the bound a hair inside the estimate (1 - 1e-16): the interval must hold it.
    return Proportion(successes, total, estimate, min(low, estimate), max(high, estimate), minimum)


def _enough_for_auc(positives: int, negatives: int, minimum: int) -> bool:
    return positives > 0 and negatives > 0 and positives >= minimum and negatives >= minimum


@dataclass(frozen=True)
class ScreeningPerformance:
    """Per-study figures for one reader or for the programme."""

    label: str  # a reader's name (read at each view, never from the cache) or the programme's label
    studies: int
    cancers: int
    non_cancers: int
    sensitivity: Proportion  # recalled cancers / cancers
    specificity: Proportion  # not-recalled non-cancers / non-cancers
    recall_rate: Proportion  # recalled studies / studies
    reader_id: int | None = None


@dataclass(frozen=True)
class RocCurve:
    false_positive_rate: tuple[float, ...]
    true_positive_rate: tuple[float, ...]
    auc: float
    positives: int
    negatives: int
    # The AI's own operating point(s): (1 - specificity, sensitivity) at the stored threshold.
    operating_point: tuple[float, float] | None


@dataclass(frozen=True)
class AiPerformance:
    """Per-breast figures of the AI over breasts with an outcome and a current prediction."""

    breasts: int
    cancers: int
    non_cancers: int
    breasts_without_ai: int  # breasts with an outcome but no current prediction (excluded)
    thresholds: tuple[float, ...]
    model_versions: tuple[str, ...]
    sensitivity: Proportion
    specificity: Proportion
    auc: float | None  # None below the minimum of malignant or of non-malignant breasts
    auc_low: float | None
    auc_high: float | None
    bootstrap_resamples: int
    minimum: int = MIN_CASES

    @property
    def has_roc(self) -> bool:
        return self.auc is not None


@dataclass(frozen=True)
class PerformanceReport:
    studies_with_outcomes: int
    cancer_studies: int
    non_cancer_studies: int
    ai: AiPerformance
    readers: list[ScreeningPerformance]
    # First and second reads grouped by what their readers saw of the AI (Read.ai_aided): aided, unaided, and (where
    # any) reads from before reveals were recorded. For automation-bias questions: did the AI change decisions?
    reads_by_ai: list[ScreeningPerformance]
    programme: ScreeningPerformance
    studies_awaiting_decision: int  # with outcomes but no final decision yet (excluded from the programme)
    programme_recall_all_final: Proportion  # context: recall rate over every finalised study, outcome or not
    benchmark: Benchmark


# ---- selectors ----------------------------------------------------------------------------------------------------


def _require(user) -> None:
    if not role_can(user, Capability.PERFORMANCE_VIEW):
        raise PermissionDenied(f"Your role does not allow this ({Capability.PERFORMANCE_VIEW}).")


def performance_report(*, user, n_bootstrap: int = DEFAULT_BOOTSTRAP, minimum: int = MIN_CASES) -> PerformanceReport:
    """`minimum`: MIN_CASES on the page; a smaller one only where figures are checked by hand on a few cases."""
    _require(user)
    report = cached(("report", n_bootstrap, minimum), lambda: _report(n_bootstrap=n_bootstrap, minimum=minimum))
    return dataclasses.replace(report, readers=_named(report.readers))


def _report(*, n_bootstrap: int, minimum: int) -> PerformanceReport:
    breast_truth = _breast_truth()
    study_truth = _study_truth(breast_truth)
    cancers = sum(study_truth.values())
    programme, awaiting = _programme(study_truth, minimum)
    all_final = Study.objects.filter(final_recall__isnull=False)
    return PerformanceReport(
        studies_with_outcomes=len(study_truth),
        cancer_studies=cancers,
        non_cancer_studies=len(study_truth) - cancers,
        ai=_ai(breast_truth, n_bootstrap=n_bootstrap, minimum=minimum),
        readers=_readers(study_truth, minimum),
        reads_by_ai=_reads_by_ai(study_truth, minimum),
        programme=programme,
        studies_awaiting_decision=awaiting,
        programme_recall_all_final=proportion(all_final.filter(final_recall=True).count(), all_final.count(), minimum),
        benchmark=BCSC,
    )


def ai_roc_curve(*, user, minimum: int = MIN_CASES) -> RocCurve | None:
    """The AI's per-breast ROC curve, or None below the minimum of malignant or of non-malignant breasts (the same
    rule as the AUC: a curve through two points says nothing)."""
    _require(user)
    return cached(("roc", minimum), lambda: _roc_curve(minimum))


def ai_roc_png(*, user, render) -> bytes | None:
    """The ROC curve drawn by render(curve) (about half a second of matplotlib), cached as the figures are; None
    when there is not enough data for a curve."""
    _require(user)

    def draw() -> bytes | None:
        curve = _roc_curve(MIN_CASES)
        return None if curve is None else render(curve)

    return cached(("roc.png",), draw)


def _roc_curve(minimum: int) -> RocCurve | None:
    labels, scores, called = _ai_arrays(_breast_scores(_breast_truth()))
    if not _enough_for_auc(int(labels.sum()), int((~labels).sum()), minimum):
        return None
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(labels, scores)
    sensitivity = float((called & labels).sum() / labels.sum())
    specificity = float((~called & ~labels).sum() / (~labels).sum())
    return RocCurve(
        false_positive_rate=tuple(float(x) for x in fpr),
        true_positive_rate=tuple(float(x) for x in tpr),
        auc=roc_auc(labels, scores),
        positives=int(labels.sum()),
        negatives=int((~labels).sum()),
        operating_point=(1 - specificity, sensitivity),
    )


# ---- ground truth -------------------------------------------------------------------------------------------------


def _breast_truth() -> dict[tuple[int, str], bool]:
    """(study id, laterality) -> malignant, for every breast with an outcome."""
    return {
        (study_id, laterality): truth == Outcome.Truth.MALIGNANT
        for study_id, laterality, truth in Outcome.objects.values_list("study_id", "laterality", "truth")
    }


def _study_truth(breast_truth: dict[tuple[int, str], bool]) -> dict[int, bool]:
    """Study id -> cancer-positive (any breast malignant), for every study with at least one outcome."""
    truth: dict[int, bool] = defaultdict(bool)
    for (study_id, _), malignant in breast_truth.items():
        truth[study_id] = truth[study_id] or malignant
    return dict(truth)


# ---- readers and programme (per study) ----------------------------------------------------------------------------


def _screening(label: str, decisions: list[tuple[bool, bool]], minimum: int) -> ScreeningPerformance:
    """decisions: (cancer, recalled) per study."""
    cancers = sum(1 for cancer, _ in decisions if cancer)
    true_positives = sum(1 for cancer, recalled in decisions if cancer and recalled)
    true_negatives = sum(1 for cancer, recalled in decisions if not cancer and not recalled)
    recalls = sum(1 for _, recalled in decisions if recalled)
    return ScreeningPerformance(
        label=label,
        studies=len(decisions),
        cancers=cancers,
        non_cancers=len(decisions) - cancers,
        sensitivity=proportion(true_positives, cancers, minimum),
        specificity=proportion(true_negatives, len(decisions) - cancers, minimum),
        recall_rate=proportion(recalls, len(decisions), minimum),
    )


def _readers(study_truth: dict[int, bool], minimum: int) -> list[ScreeningPerformance]:
    reads = Read.objects.filter(
        study_id__in=Outcome.objects.values("study_id"),
        kind__in=(Read.Kind.FIRST, Read.Kind.SECOND),
        status=Read.Status.SUBMITTED,
        recall__isnull=False,
    ).values_list("reader_id", "study_id", "recall")
    by_reader: dict[int, list[tuple[bool, bool]]] = defaultdict(list)
    for reader_id, study_id, recall in reads:
        if study_id in study_truth:  # an outcome recorded since study_truth was read waits for the next view
            by_reader[reader_id].append((study_truth[study_id], recall))
    return [dataclasses.replace(_screening("", by_reader[pk], minimum), reader_id=pk) for pk in by_reader]


AI_EXPOSURE_LABELS = {
    True: "Reads with the AI seen",
    False: "Reads without the AI",
    None: "Reads from before AI reveals were recorded",
}


def _reads_by_ai(study_truth: dict[int, bool], minimum: int) -> list[ScreeningPerformance]:
    """Submitted first and second reads of studies with outcomes, grouped by Read.ai_aided: the reader saw the AI
    (revealed it at least once), did not (read without it, or never revealed it), or it is not known."""
    reads = Read.objects.filter(
        study_id__in=Outcome.objects.values("study_id"),
        kind__in=(Read.Kind.FIRST, Read.Kind.SECOND),
        status=Read.Status.SUBMITTED,
        recall__isnull=False,
    ).only("study_id", "recall", "ai_available", "ai_first_shown_at", "ai_reveal_recorded")
    groups: dict[bool | None, list[tuple[bool, bool]]] = {True: [], False: [], None: []}
    for read in reads:
        if read.study_id in study_truth:
            groups[read.ai_aided].append((study_truth[read.study_id], read.recall))
    return [
        _screening(label, groups[aided], minimum)
        for aided, label in AI_EXPOSURE_LABELS.items()
        if groups[aided] or aided is not None
    ]


def _named(readers: list[ScreeningPerformance]) -> list[ScreeningPerformance]:
    """The readers' rows under their current names, in name order."""
    users = get_user_model().objects.in_bulk([r.reader_id for r in readers])
    named = [
        dataclasses.replace(r, label=users[r.reader_id].get_full_name() or users[r.reader_id].get_username())
        for r in readers
    ]
    return sorted(named, key=lambda r: r.label.lower())


def _programme(study_truth: dict[int, bool], minimum: int) -> tuple[ScreeningPerformance, int]:
    decided = dict(
        Study.objects.filter(pk__in=list(study_truth), final_recall__isnull=False).values_list("pk", "final_recall")
    )
    decisions = [(study_truth[pk], recall) for pk, recall in decided.items()]
    return _screening("Double-reading programme", decisions, minimum), len(study_truth) - len(decided)


# ---- the AI (per breast) ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _BreastScore:
    malignant: bool
    probability: float
    threshold: float
    model_version: str


def _breast_scores(breast_truth: dict[tuple[int, str], bool]) -> dict[tuple[int, str], _BreastScore]:
    """Max over each breast's images of their current prediction (the one of the image's most recent job)."""
    latest_job = InferenceJob.objects.filter(image=OuterRef("image")).order_by("-created_at", "-id").values("id")[:1]
    rows = (
        Prediction.objects.filter(image__study_id__in=Outcome.objects.values("study_id"))
        .filter(job_id=Subquery(latest_job))
        .values_list("image__study_id", "image__laterality", "probability", "threshold", "model_version__name")
    )
    scores: dict[tuple[int, str], _BreastScore] = {}
    for study_id, laterality, probability, threshold, version in rows:
        key = (study_id, laterality)
        if key not in breast_truth:
            continue
        if key not in scores or probability > scores[key].probability:
            scores[key] = _BreastScore(breast_truth[key], probability, threshold, version)
    return scores


def _ai_arrays(scores: dict[tuple[int, str], _BreastScore]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    values = list(scores.values())
    labels = np.array([s.malignant for s in values], dtype=bool)
    probabilities = np.array([s.probability for s in values], dtype=np.float64)
    called = np.array([s.probability >= s.threshold for s in values], dtype=bool)
    return labels, probabilities, called


def _ai(breast_truth: dict[tuple[int, str], bool], *, n_bootstrap: int, minimum: int) -> AiPerformance:
    scores = _breast_scores(breast_truth)
    labels, probabilities, called = _ai_arrays(scores)
    cancers = int(labels.sum())
    auc = low = high = None
    if _enough_for_auc(cancers, len(labels) - cancers, minimum):
        auc = roc_auc(labels, probabilities)
        # bootstrap_ci(roc_auc, ...)'s interval to the last bit, without ranking each resample.
        low, high = bootstrap_auc_ci(labels, probabilities, n=n_bootstrap, seed=BOOTSTRAP_SEED)
        low, high = (low, high) if math.isfinite(low) and math.isfinite(high) else (None, None)
    return AiPerformance(
        breasts=len(labels),
        cancers=cancers,
        non_cancers=len(labels) - cancers,
        breasts_without_ai=len(breast_truth) - len(scores),
        thresholds=tuple(sorted({s.threshold for s in scores.values()})),
        model_versions=tuple(sorted({s.model_version for s in scores.values()})),
        sensitivity=proportion(int((called & labels).sum()), cancers, minimum),
        specificity=proportion(int((~called & ~labels).sum()), len(labels) - cancers, minimum),
        auc=auc,
        auc_low=low,
        auc_high=high,
        bootstrap_resamples=n_bootstrap,
        minimum=minimum,
    )
