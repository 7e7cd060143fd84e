"""Breast density on the performance page (issue 22): how readers agree with each other and with the AI on density,
the programme's and the AI's figures in dense (BI-RADS c, d) and not dense (a, b) breasts, and technical recall.

- Reader-reader agreement: each study with a first and a second read that both recorded density; linear-weighted
  Cohen's kappa over categories a-d, with a 95 % percentile bootstrap over women (inference.metrics).
- Reader-AI agreement: each final study's reader density (cases.reading.density) against the active density
  model's estimate on the BI-RADS scale; the same kappa. The AI's estimate is a research figure unless its model is
  validated; the page says which.
- By density: studies with an outcome, split by their final reader density; sensitivity, specificity and recall rate
  of the programme's final decision (and of the AI per breast, at its operating point), as the rest of the page.
- Technical recall: finalised studies whose result is a technical recall, and each reader's reads that asked for one.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from cases.models import Outcome, Read, Study, StudyDensity
from cases.performance.performance import MIN_CASES, Proportion, ScreeningPerformance, _screening, proportion
from cases.reading.density import final_reader_density, is_dense
from cases.reading.technical_recall import screening_result
from inference.metrics import cluster_bootstrap_ci, weighted_kappa

CATEGORIES = "abcd"


@dataclass(frozen=True)
class Agreement:
    pairs: int
    women: int
    kappa: float | None  # None below the minimum
    low: float | None
    high: float | None
    minimum: int = MIN_CASES

    @property
    def enough(self) -> bool:
        return self.kappa is not None


@dataclass(frozen=True)
class DensityReport:
    readers: Agreement
    reader_ai: Agreement
    ai_validated: bool | None  # the density model's validation (None: no estimates)
    by_density: list[ScreeningPerformance]  # programme: dense, not dense
    studies_without_density: int  # with an outcome and a final decision, but no final reader density
    technical_recall: Proportion  # finalised studies with a technical recall result
    reader_technical_recall: list[tuple[int, Proportion]]  # (reader id, reads asking for a technical recall)


def density_report(*, minimum: int = MIN_CASES, n_bootstrap: int = 1000) -> DensityReport:
    final = list(
        Study.objects.filter(status=Study.Status.FINAL)
        .select_related("patient")
        .prefetch_related("reads__technical_recalls")
    )
    finals = {study.pk: final_reader_density(study, reads=list(study.reads.all())) for study in final}
    return DensityReport(
        readers=_reader_reader(minimum, n_bootstrap),
        reader_ai=_reader_ai(final, finals, minimum, n_bootstrap),
        ai_validated=_ai_validated(),
        by_density=_by_density(finals, minimum),
        studies_without_density=_without_density(finals),
        technical_recall=_technical_recall(final, minimum),
        reader_technical_recall=_reader_technical_recall(minimum),
    )


def _agreement(first: list[str], second: list[str], women: list[int], minimum: int, n_bootstrap: int) -> Agreement:
    n = len(first)
    if n < minimum:
        return Agreement(n, len(set(women)), None, None, None, minimum)
    a = np.array([CATEGORIES.index(x) for x in first])
    b = np.array([CATEGORIES.index(x) for x in second])
    kappa = weighted_kappa(a, b, classes=4)
    low, high = cluster_bootstrap_ci(lambda x, y: weighted_kappa(x, y, classes=4), a, b, np.array(women),
                                     n=n_bootstrap, seed=0)  # fmt: skip
    if not all(np.isfinite((kappa, low, high))):  # undefined: every rating the same category (no chance to beat)
        return Agreement(n, len(set(women)), None, None, None, minimum)
    return Agreement(n, len(set(women)), round(kappa, 3), round(low, 3), round(high, 3), minimum)


def _reader_reader(minimum: int, n_bootstrap: int) -> Agreement:
    reads = Read.objects.filter(kind__in=Read.DOUBLE, status=Read.Status.SUBMITTED).exclude(density="")
    by_study: dict[int, dict[str, str]] = defaultdict(dict)
    women: dict[int, int] = {}
    for study_id, kind, density, patient in reads.values_list("study_id", "kind", "density", "study__patient_id"):
        by_study[study_id][kind] = density
        women[study_id] = patient
    pairs = [(s, d) for s, d in by_study.items() if len(d) == 2]
    return _agreement([d["first"] for _, d in pairs], [d["second"] for _, d in pairs],
                      [women[s] for s, _ in pairs], minimum, n_bootstrap)  # fmt: skip


def _reader_ai(final: list[Study], finals: dict, minimum: int, n_bootstrap: int) -> Agreement:
    from cases.studies.ai_density import active_density_model

    model = active_density_model()
    if model is None:
        return Agreement(0, 0, None, None, None, minimum)
    estimates = {
        e.study_id: e.category
        for e in StudyDensity.objects.filter(model_version=model, status="succeeded", scale="birads").order_by(
            "created_at"
        )
    }  # the newest estimate of each study wins
    studies = [s for s in final if finals.get(s.pk) and s.pk in estimates]
    return _agreement([finals[s.pk].category for s in studies], [estimates[s.pk] for s in studies],
                      [s.patient_id for s in studies], minimum, n_bootstrap)  # fmt: skip


def _ai_validated() -> bool | None:
    from cases.studies.ai_density import active_density_model

    model = active_density_model()
    if model is None:
        return None
    from inference.density import density_validation

    return density_validation(model.card).validated


def _by_density(finals: dict, minimum: int) -> list[ScreeningPerformance]:
    cancer: dict[int, bool] = defaultdict(bool)
    for study_id, truth in Outcome.objects.values_list("study_id", "truth"):
        cancer[study_id] |= truth == Outcome.Truth.MALIGNANT
    decided = dict(
        Study.objects.filter(pk__in=list(cancer), final_recall__isnull=False).values_list("pk", "final_recall")
    )
    groups: dict[bool, list[tuple[bool, bool]]] = {True: [], False: []}
    for study_id, recall in decided.items():
        density = finals.get(study_id)
        if density is not None:
            groups[is_dense(density.category)].append((cancer[study_id], recall))
    return [
        _screening("Dense breasts (c, d)", groups[True], minimum),
        _screening("Not dense (a, b)", groups[False], minimum),
    ]


def _without_density(finals: dict) -> int:
    with_outcome = set(Outcome.objects.values_list("study_id", flat=True))
    return sum(1 for study_id, density in finals.items() if study_id in with_outcome and density is None)


def _technical_recall(final: list[Study], minimum: int) -> Proportion:
    results = [screening_result(s, reads=list(s.reads.all())) for s in final if s.final_recall is not None]
    return proportion(sum(1 for r in results if r == "technical_recall"), len(results), minimum)


def _reader_technical_recall(minimum: int) -> list[tuple[int, Proportion]]:
    reads = Read.objects.filter(kind__in=Read.DOUBLE, status=Read.Status.SUBMITTED).exclude(density="")
    totals: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    asked = set(Read.objects.filter(technical_recalls__isnull=False, kind__in=Read.DOUBLE).values_list("pk", flat=True))
    for pk, reader_id in reads.values_list("pk", "reader_id"):
        totals[reader_id][1] += 1
        totals[reader_id][0] += pk in asked
    return [(reader_id, proportion(k, n, minimum)) for reader_id, (k, n) in totals.items()]
