"""The local acceptance test of a malignancy model (issue 21 item 3, docs/adr/0009-shadow-mode-and-local-acceptance.md).

1. A lead writes the protocol (AcceptanceProtocol): the period of final screens with outcomes, the minimum cancers
   and screens, and the criteria. It is locked when saved, before any result exists (the model refuses to change or
   delete it, and so does the database).
2. The report (AcceptanceReport) is computed from the site's final screens with outcomes whose screen date falls in
   the period: the model's scores come from its own predictions (shadow ones included: a model in shadow is
   exactly what is being tested), the readers' decisions from the recorded reads. Per screen (a woman's exam): the
   model's score is its highest over the screen's images (max over views and breasts), it recalls at its operating
   point (score >= ModelVersion.threshold, as the platform calls predictions); the first reader recalls when the
   first read recalls either breast; double reading's decision is the study's final decision (concordant reads, or
   the arbitration). A cancer screen has a malignant breast. Only screens the model scored on every imaged breast
   count (the others are counted apart): the model and the readers are measured on the same screens.
3. Figures: AUC (screen level, ties one half), sensitivity, specificity and recall rate of the model, the first
   reader and double reading, each with a 95 % percentile bootstrap interval that resamples WOMEN (a woman's screens
   move together: cases.performance.strategy_statistics for the proportions, inference.metrics.cluster_bootstrap_ci
   for the AUC), the same seeded so a report re-runs the same. Subgroups: equipment manufacturer (the images' DICOM
   Manufacturer), age band at the screen, and final reader density where known.
4. Criteria, each pass or fail: AUC 95 % CI lower bound >= min_auc_lower; sensitivity >= double reading's
   sensitivity - sensitivity_margin; specificity >= min_specificity; recall rate <= max_recall_rate. Overall: pass
   when every criterion passes, fail otherwise, and "insufficient" (never pass) when the period holds fewer cancers
   or screens than the protocol's minimums (or the AUC cannot be computed).
5. A lead signs off a passing report (audited); that accepts the model through inference.lifecycle, the status
   change referencing the report.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from accounts.roles import Capability, role_can
from audit.services import audit_record
from cases.performance.strategy_selectors import strategy_screens
from cases.performance.strategy_statistics import women_bootstrap_totals
from core.errors import ApplicationError
from inference.lifecycle import model_version_status_change
from inference.metrics import cluster_bootstrap_ci, roc_auc, wilson_ci
from inference.models import AcceptanceProtocol, AcceptanceReport, ModelKind, ModelStatus, ModelVersion, Prediction

SEED = 0
LEVEL = 0.95
AGE_BANDS = ((0, 50, "under 50"), (50, 60, "50-59"), (60, 70, "60-69"), (70, 200, "70 and over"))
# Per-screen count columns of one decision maker (model, first reader, double reading).
COLUMNS = ("screens", "cancers", "non_cancers", "detected", "cleared", "recalls")


def _require(user, capability: Capability) -> None:
    if not role_can(user, capability):
        raise PermissionDenied(f"Your role does not allow this ({capability}).")


def acceptance_model_get(*, user, pk: int) -> ModelVersion:
    _require(user, Capability.MODEL_VIEW)
    version = ModelVersion.objects.filter(pk=pk).first()
    if version is None:
        raise Http404("No such model.")
    return version


def acceptance_report_get(*, user, model_version: ModelVersion, pk: int) -> AcceptanceReport:
    _require(user, Capability.MODEL_VIEW)
    report = (
        AcceptanceReport.objects.select_related("protocol__written_by", "computed_by", "signed_off_by")
        .filter(pk=pk, model_version=model_version)
        .first()
    )
    if report is None:
        raise Http404("No such acceptance report.")
    return report


# ---- the protocol ----------------------------------------------------------------------------------------------


@transaction.atomic
def acceptance_protocol_lock(*, user, model_version: ModelVersion, **criteria) -> AcceptanceProtocol:
    """Write and lock a protocol: saved once, never changed; written before its results are computed."""
    _require(user, Capability.MODEL_ACCEPT)
    if model_version.kind != ModelKind.MALIGNANCY:
        raise ApplicationError("The local acceptance test measures a malignancy model's scores against outcomes.")
    if model_version.status not in (ModelStatus.IMPORTED, ModelStatus.SHADOW):
        raise ApplicationError(
            f"{model_version.name} is {model_version.get_status_display().lower()}: a local acceptance test is for a "
            "model not yet accepted (imported, or running in shadow)."
        )
    if criteria["period_start"] > criteria["period_end"]:
        raise ApplicationError("The period ends before it starts.")
    for field in ("min_auc_lower", "min_specificity", "max_recall_rate", "sensitivity_margin"):
        if not 0.0 <= float(criteria[field]) <= 1.0:
            raise ApplicationError(f"{field} is a proportion between 0 and 1.")
    protocol = AcceptanceProtocol.objects.create(model_version=model_version, written_by=user, **criteria)
    audit_record(
        action="model.acceptance_protocol_locked",
        actor=user,
        obj=protocol,
        details={"model_version": model_version.name, "model_version_id": model_version.pk, **protocol.criteria()},
    )
    return protocol


# ---- the data --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AcceptanceScreen:
    woman: str
    study_id: int
    cancer: bool
    score: float
    first_recall: bool
    double_recall: bool
    manufacturer: str
    age_band: str
    density: str


def acceptance_screens(protocol: AcceptanceProtocol) -> tuple[list[AcceptanceScreen], dict[str, int]]:
    """The protocol's screens (final, with an outcome, screen date in the period) the model scored on every imaged
    breast, and the counts of those left out by reason."""
    from cases.models import Image, Read, Study
    from cases.reading.density import final_reader_density

    version = protocol.model_version
    selection = strategy_screens(model_version=version, predictions=Prediction.all_objects)
    excluded = dict(selection.excluded)
    in_period = [s for s in selection.screens if protocol.period_start <= s.screen_date <= protocol.period_end]
    study_ids = [s.study_id for s in in_period]
    manufacturers: dict[int, str] = {}
    for study_id, manufacturer in Image.objects.filter(study_id__in=study_ids).values_list("study_id", "manufacturer"):
        if manufacturer and study_id not in manufacturers:
            manufacturers[study_id] = manufacturer.strip()
    studies = {
        s.pk: s
        for s in Study.objects.filter(pk__in=study_ids)
        .select_related("patient")
        .prefetch_related("reads")
        .only("pk", "status", "patient__birth_date")
    }
    screens = []
    for screen in in_period:
        scores = [b.ai_score for b in screen.breasts]
        if any(score is None for score in scores):
            excluded["not scored by the model on every imaged breast"] = (
                excluded.get("not scored by the model on every imaged breast", 0) + 1
            )
            continue
        study = studies[screen.study_id]
        birth = study.patient.birth_date
        age_band = "unknown"
        if birth is not None:
            age = (screen.screen_date - birth).days // 365.25
            age_band = next(label for low, high, label in AGE_BANDS if low <= age < high)
        density = final_reader_density(study, reads=[r for r in study.reads.all() if r.status == Read.Status.SUBMITTED])
        screens.append(
            AcceptanceScreen(
                woman=screen.woman_id,
                study_id=screen.study_id,
                cancer=any(b.malignant for b in screen.breasts),
                score=max(scores),
                first_recall=any(b.first_recall for b in screen.breasts),
                double_recall=any(b.final_recall for b in screen.breasts),
                manufacturer=manufacturers.get(screen.study_id, "unknown"),
                age_band=age_band,
                density=density.category if density is not None else "unknown",
            )
        )
    return screens, excluded


# ---- the figures -----------------------------------------------------------------------------------------------


def _proportion(numerator: int, denominator: int, resampled_num, resampled_den) -> dict:
    if denominator == 0:
        return {"numerator": 0, "denominator": 0, "value": None, "low": None, "high": None}
    value = numerator / denominator
    if numerator in (0, denominator):  # the bootstrap shows no spread at 0 % or 100 %: Wilson instead
        low, high = wilson_ci(numerator, denominator)
        low, high, interval = min(low, value), max(high, value), "wilson"
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            values = resampled_num / resampled_den
        values = values[np.isfinite(values)]
        alpha = (1 - LEVEL) / 2
        low, high = float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))
        interval = "bootstrap over women"
    return {
        "numerator": numerator,
        "denominator": denominator,
        "value": value,
        "low": low,
        "high": high,
        "interval": interval,
    }


def _decision_figures(screens, recalls: np.ndarray, woman: np.ndarray, women: int, n: int) -> dict:
    """Sensitivity, specificity and recall rate of one decision maker with woman-level bootstrap intervals."""
    cancer = np.array([s.cancer for s in screens], dtype=bool)
    per_screen = np.column_stack(
        [np.ones(len(screens)), cancer, ~cancer, cancer & recalls, ~cancer & ~recalls, recalls]
    ).astype(np.float64)
    per_woman = np.column_stack(
        [np.bincount(woman, weights=per_screen[:, c], minlength=women) for c in range(len(COLUMNS))]
    )
    totals = per_screen.sum(axis=0).astype(int)
    resampled = women_bootstrap_totals(per_woman, n=n, seed=SEED)
    col = {name: i for i, name in enumerate(COLUMNS)}

    def figure(num: str, den: str) -> dict:
        return _proportion(int(totals[col[num]]), int(totals[col[den]]), resampled[:, col[num]], resampled[:, col[den]])

    return {
        "sensitivity": figure("detected", "cancers"),
        "specificity": figure("cleared", "non_cancers"),
        "recall_rate": figure("recalls", "screens"),
    }


def _figures(screens: list[AcceptanceScreen], *, threshold: float, n: int) -> dict:
    if not screens:
        return {"screens": 0, "cancers": 0, "model": {}, "first_reader": {}, "double_reading": {}}
    names = sorted({s.woman for s in screens})
    code = {name: i for i, name in enumerate(names)}
    woman = np.array([code[s.woman] for s in screens], dtype=np.intp)
    cancer = np.array([s.cancer for s in screens], dtype=bool)
    scores = np.array([s.score for s in screens], dtype=np.float64)
    auc = roc_auc(cancer, scores)
    auc_figure = {"value": None, "low": None, "high": None}
    if np.isfinite(auc):
        low, high = cluster_bootstrap_ci(roc_auc, cancer, scores, woman, n=n, seed=SEED, level=LEVEL)
        auc_figure = {
            "value": auc,
            "low": low if np.isfinite(low) else None,
            "high": high if np.isfinite(high) else None,
            "interval": "bootstrap over women",
        }
    model = {"auc": auc_figure, "threshold": threshold}
    model.update(_decision_figures(screens, scores >= threshold, woman, len(names), n))
    first = _decision_figures(screens, np.array([s.first_recall for s in screens]), woman, len(names), n)
    double = _decision_figures(screens, np.array([s.double_recall for s in screens]), woman, len(names), n)
    return {
        "screens": len(screens),
        "cancers": int(cancer.sum()),
        "women": len(names),
        "model": model,
        "first_reader": first,
        "double_reading": double,
    }


def _criteria(protocol: AcceptanceProtocol, figures: dict) -> list[dict]:
    model, double = figures.get("model") or {}, figures.get("double_reading") or {}

    def value(block: dict, key: str, part: str = "value"):
        return (block.get(key) or {}).get(part)

    def check(key: str, label: str, observed, target, passed_if) -> dict:
        passed = None if observed is None or target is None else bool(passed_if(observed, target))
        return {"criterion": key, "label": label, "observed": observed, "target": target, "passed": passed}

    double_sensitivity = value(double, "sensitivity")
    sensitivity_target = None if double_sensitivity is None else double_sensitivity - protocol.sensitivity_margin
    return [
        check(
            "auc_lower",
            f"AUC 95 % CI lower bound >= {protocol.min_auc_lower:.3f}",
            value(model, "auc", "low"),
            protocol.min_auc_lower,
            lambda o, t: o >= t,
        ),
        check(
            "sensitivity",
            f"Sensitivity >= double reading's sensitivity - {protocol.sensitivity_margin:.3f}",
            value(model, "sensitivity"),
            sensitivity_target,
            lambda o, t: o >= t - 1e-12,
        ),
        check(
            "specificity",
            f"Specificity >= {protocol.min_specificity:.3f}",
            value(model, "specificity"),
            protocol.min_specificity,
            lambda o, t: o >= t,
        ),
        check(
            "recall_rate",
            f"Recall rate <= {protocol.max_recall_rate:.3f}",
            value(model, "recall_rate"),
            protocol.max_recall_rate,
            lambda o, t: o <= t,
        ),
    ]


def acceptance_figures(protocol: AcceptanceProtocol) -> tuple[str, dict]:
    """(result, figures) of a protocol on today's data."""
    screens, excluded = acceptance_screens(protocol)
    version = protocol.model_version
    n = protocol.n_bootstrap
    figures = _figures(screens, threshold=version.threshold, n=n)
    subgroups: dict[str, list] = {}
    for attribute in ("manufacturer", "age_band", "density"):
        groups = defaultdict(list)
        for screen in screens:
            groups[getattr(screen, attribute)].append(screen)
        subgroups[attribute] = [
            {"group": name, **_figures(members, threshold=version.threshold, n=n)}
            for name, members in sorted(groups.items())
        ]
    figures["subgroups"] = subgroups
    figures["excluded"] = excluded
    figures["criteria"] = _criteria(protocol, figures)
    figures["protocol"] = protocol.criteria()
    figures["model_version"] = {"id": version.pk, "name": version.name, "file_sha256": version.file_sha256}
    insufficient = []
    if figures["cancers"] < protocol.min_cancers:
        insufficient.append(f"{figures['cancers']} cancers in the period; the protocol needs {protocol.min_cancers}")
    if figures["screens"] < protocol.min_screens:
        insufficient.append(f"{figures['screens']} screens in the period; the protocol needs {protocol.min_screens}")
    if any(c["passed"] is None for c in figures["criteria"]):
        insufficient.append("a criterion could not be computed (no cancers or no non-cancers)")
    figures["insufficient"] = insufficient
    if insufficient:
        result = AcceptanceReport.Result.INSUFFICIENT
    elif all(c["passed"] for c in figures["criteria"]):
        result = AcceptanceReport.Result.PASS
    else:
        result = AcceptanceReport.Result.FAIL
    return result, figures


@transaction.atomic
def acceptance_report_compute(*, user, protocol: AcceptanceProtocol) -> AcceptanceReport:
    _require(user, Capability.MODEL_ACCEPT)
    result, figures = acceptance_figures(protocol)
    report = AcceptanceReport.objects.create(
        protocol=protocol, model_version=protocol.model_version, result=result, figures=figures, computed_by=user
    )
    audit_record(
        action="model.acceptance_computed",
        actor=user,
        obj=report,
        details={
            "model_version": protocol.model_version.name,
            "protocol_id": protocol.pk,
            "result": result,
            "screens": figures["screens"],
            "cancers": figures["cancers"],
            "criteria": {c["criterion"]: c["passed"] for c in figures["criteria"]},
        },
    )
    return report


@transaction.atomic
def acceptance_report_sign_off(*, user, report: AcceptanceReport, note: str = "") -> AcceptanceReport:
    """A lead signs off a passing report: the model becomes accepted (inference.lifecycle), the change referencing
    the report."""
    _require(user, Capability.MODEL_ACCEPT)
    report = AcceptanceReport.objects.select_for_update().select_related("model_version").get(pk=report.pk)
    if report.result != AcceptanceReport.Result.PASS:
        raise ApplicationError(
            f"Only a passing report can be signed off; this one is {report.get_result_display().lower()}."
        )
    if report.signed_off_at is not None:
        raise ApplicationError("This report is already signed off.")
    report.signed_off_by, report.signed_off_at, report.sign_off_note = user, timezone.now(), note.strip()
    report.save(update_fields=["signed_off_by", "signed_off_at", "sign_off_note"])
    audit_record(
        action="model.acceptance_signed_off",
        actor=user,
        obj=report,
        details={"model_version": report.model_version.name, "report_id": report.pk, "note": report.sign_off_note},
    )
    model_version_status_change(
        model_version=report.model_version,
        to_status=ModelStatus.ACCEPTED,
        reason=f"Accepted at this site: local acceptance report {report.pk} passed and was signed off by "
        f"{user.get_username()}." + (f" {report.sign_off_note}" if report.sign_off_note else ""),
        actor=user,
        acceptance_report=report,
    )
    return report


# ---- exports -----------------------------------------------------------------------------------------------------


def acceptance_report_record(report: AcceptanceReport) -> dict:
    return {
        "id": report.pk,
        "model_version_id": report.model_version_id,
        "protocol_id": report.protocol_id,
        "result": report.result,
        "computed_at": report.computed_at.isoformat(),
        "computed_by": report.computed_by.get_username(),
        "signed_off_at": report.signed_off_at.isoformat() if report.signed_off_at else None,
        "signed_off_by": report.signed_off_by.get_username() if report.signed_off_by else None,
        "sign_off_note": report.sign_off_note,
        "figures": report.figures,
    }


def acceptance_report_json(report: AcceptanceReport) -> str:
    return json.dumps(acceptance_report_record(report), indent=1, default=str)


def acceptance_report_csv(report: AcceptanceReport) -> str:
    """One row per (group, reader, metric): the overall figures and every subgroup, then the criteria."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["report", "result", "subgroup", "group", "who", "metric", "value", "ci_low", "ci_high", "n"])

    def rows(subgroup: str, group: str, figures: dict) -> None:
        for who in ("model", "first_reader", "double_reading"):
            for metric, figure in (figures.get(who) or {}).items():
                if not isinstance(figure, dict):
                    continue
                writer.writerow(
                    [report.pk, report.result, subgroup, group, who, metric, figure.get("value"), figure.get("low"),
                     figure.get("high"), figure.get("denominator", figures.get("screens"))]
                )  # fmt: skip

    rows("all", "all", report.figures)
    for subgroup, groups in (report.figures.get("subgroups") or {}).items():
        for group in groups:
            rows(subgroup, group["group"], group)
    for criterion in report.figures.get("criteria", []):
        writer.writerow(
            [report.pk, report.result, "criterion", criterion["criterion"], "model", criterion["label"],
             criterion["observed"], criterion["target"], "pass" if criterion["passed"] else
             ("not computed" if criterion["passed"] is None else "fail"), ""]
        )  # fmt: skip
    return out.getvalue()
