"""Computing a model's monitoring, one row per model and day (ModelMonitoringDay): run daily by Celery beat (the
previous days, then the stop rules on the last one) and on demand by a lead or an administrator.

Per day, from the predictions the model made that day (Prediction.created_at, in the site's time zone):

- inputs: images per manufacturer, manufacturer's model name and software version (Image.manufacturer and the
  DICOM attributes ingestion keeps), images per study ("views per exam"), and which of those values the baseline
  never saw. Pixel statistics of the breast region are not computed: the stored rows hold none, and reading every
  day's working images back from the store is not cheap (docs/model-monitoring.md);
- outputs: the score histogram on fixed bins, PSI and the two-sample KS test against the baseline's scores (days
  inside the baseline get neither: they are the baseline), the study flag rate at the model's operating point;
- AI-reader agreement: per breast and per study, the AI's flag against the final decision (the arbitration, else
  the first read, which then agreed with the second), for the studies final when the day is computed;
- outcome-based sensitivity: breasts with a malignant outcome, and how many the AI flagged.

Reads and outcomes arrive later than predictions, so each run recomputes the last MODEL_MONITORING_DAYS days; a
recomputed day replaces its row (idempotent)."""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from cases.models import BreastAssessment, Outcome, Read, Study
from inference.models import ModelKind, ModelMonitoringDay, ModelStatus, ModelVersion, Prediction
from inference.monitoring import stats

logger = logging.getLogger(__name__)

BASELINE_DAYS = 28
MONITORED = (ModelStatus.ACTIVE, ModelStatus.SHADOW)
EQUIPMENT_FIELDS = ("manufacturer", "model_name", "software_version")


def _software(value) -> str:
    if isinstance(value, list | tuple):
        return "\\".join(str(v) for v in value)
    return str(value or "")


def baseline_range(model: ModelVersion) -> tuple[date, date] | None:
    """The model's baseline period: its baseline_start..baseline_end, else its first 28 days of predictions (from
    the day of its first one). None while it has made none (and no period is set)."""
    if model.baseline_start and model.baseline_end:
        return model.baseline_start, model.baseline_end
    first = Prediction.objects.filter(model_version=model).order_by("created_at").values_list("created_at", flat=True)
    first = first.first()
    if first is None:
        return None
    start = model.baseline_start or timezone.localdate(first)
    return start, model.baseline_end or start + timedelta(days=BASELINE_DAYS - 1)


def _rows(model: ModelVersion, start: date, end: date) -> list[dict]:
    return list(
        Prediction.objects.filter(model_version=model, created_at__date__gte=start, created_at__date__lte=end).values(
            "probability",
            "image_id",
            "image__study_id",
            "image__laterality",
            "image__manufacturer",
            "image__dicom_attributes",
        )
    )


def _equipment(row: dict) -> dict[str, str]:
    attributes = row["image__dicom_attributes"] or {}
    return {
        "manufacturer": (row["image__manufacturer"] or "").strip(),
        "model_name": str(attributes.get("ManufacturerModelName") or "").strip(),
        "software_version": _software(attributes.get("SoftwareVersions")).strip(),
    }


def _study_flags(rows: list[dict], threshold: float) -> dict[int, bool]:
    best: dict[int, float] = defaultdict(float)
    for row in rows:
        best[row["image__study_id"]] = max(best[row["image__study_id"]], row["probability"])
    return {study: score >= threshold for study, score in best.items()}


@dataclass
class Baseline:
    start: date
    end: date
    scores: list[float] = field(default_factory=list)
    histogram: list[int] = field(default_factory=list)
    equipment: dict[str, set[str]] = field(default_factory=dict)
    flag_rate: float | None = None
    studies: int = 0

    def as_dict(self) -> dict:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "predictions": len(self.scores),
            "studies": self.studies,
            "flag_rate": self.flag_rate,
            "histogram": self.histogram,
            "equipment": {name: sorted(values) for name, values in self.equipment.items()},
        }


def baseline_get(model: ModelVersion) -> Baseline | None:
    period = baseline_range(model)
    if period is None:
        return None
    rows = _rows(model, *period)
    baseline = Baseline(start=period[0], end=period[1], scores=[r["probability"] for r in rows])
    baseline.histogram = stats.histogram(baseline.scores)
    baseline.equipment = {name: set() for name in EQUIPMENT_FIELDS}
    for row in rows:
        for name, value in _equipment(row).items():
            if value:
                baseline.equipment[name].add(value)
    flags = _study_flags(rows, model.threshold)
    baseline.studies = len(flags)
    baseline.flag_rate = sum(flags.values()) / len(flags) if flags else None
    return baseline


def _final_breast_recall(study_ids: list[int]) -> dict[tuple[int, str], bool]:
    """(study, side) -> the final decision's recall of that breast: the arbitration's, else the first read's."""
    deciding: dict[int, Read] = {}
    reads = Read.objects.filter(
        study_id__in=study_ids,
        study__status=Study.Status.FINAL,
        status=Read.Status.SUBMITTED,
        kind__in=(Read.Kind.ARBITRATION, Read.Kind.FIRST),
    )
    for read in reads:
        if read.kind == Read.Kind.ARBITRATION or read.study_id not in deciding:
            deciding[read.study_id] = read
    by_read = {read.pk: study for study, read in deciding.items()}
    return {
        (by_read[a.read_id], a.laterality): a.recall
        for a in BreastAssessment.objects.filter(read_id__in=by_read).only("read_id", "laterality", "recall")
    }


def _agreement(rows: list[dict], threshold: float) -> tuple[dict, dict]:
    breast_score: dict[tuple[int, str], float] = defaultdict(float)
    for row in rows:
        key = (row["image__study_id"], row["image__laterality"])
        breast_score[key] = max(breast_score[key], row["probability"])
    study_ids = sorted({study for study, _ in breast_score})
    recall = _final_breast_recall(study_ids)
    cells = Counter()
    study_cells = Counter()
    study_ai: dict[int, bool] = defaultdict(bool)
    study_reader: dict[int, bool] = defaultdict(bool)
    for key, reader_recall in recall.items():
        if key not in breast_score:
            continue
        ai_flag = breast_score[key] >= threshold
        cells[("ai" if ai_flag else "no_ai") + "_" + ("recall" if reader_recall else "no_recall")] += 1
        study_ai[key[0]] |= ai_flag
        study_reader[key[0]] |= reader_recall
    for study in study_reader:
        study_cells[
            ("ai" if study_ai[study] else "no_ai") + "_" + ("recall" if study_reader[study] else "no_recall")
        ] += 1

    def summary(counter: Counter) -> dict:
        total = sum(counter.values())
        agree = counter["ai_recall"] + counter["no_ai_no_recall"]
        return {
            "compared": total,
            "ai_recall": counter["ai_recall"],
            "ai_no_recall": counter["ai_no_recall"],
            "no_ai_recall": counter["no_ai_recall"],
            "no_ai_no_recall": counter["no_ai_no_recall"],
            "rate": agree / total if total else None,
        }

    malignant = Outcome.objects.filter(study_id__in=study_ids, truth=Outcome.Truth.MALIGNANT).values_list(
        "study_id", "laterality"
    )
    malignant = [key for key in malignant if key in breast_score]
    detected = sum(1 for key in malignant if breast_score[key] >= threshold)
    outcomes = {
        "malignant_breasts": len(malignant),
        "flagged": detected,
        "sensitivity": detected / len(malignant) if malignant else None,
    }
    return {"breast": summary(cells), "study": summary(study_cells)}, outcomes


def monitoring_day_compute(model: ModelVersion, day: date, baseline: Baseline | None) -> ModelMonitoringDay | None:
    """Compute (or compute again) one day of a model's monitoring; None for a day before its first prediction
    that has no row."""
    rows = _rows(model, day, day)
    existing = ModelMonitoringDay.objects.filter(model_version=model, day=day).first()
    if not rows and existing is None and (baseline is None or day < baseline.start):
        return None
    scores = [r["probability"] for r in rows]
    inputs: dict[str, Counter] = {name: Counter() for name in EQUIPMENT_FIELDS}
    for row in rows:
        for name, value in _equipment(row).items():
            inputs[name][value or "(not recorded)"] += 1
    flags = _study_flags(rows, model.threshold)
    in_baseline = baseline is not None and baseline.start <= day <= baseline.end
    compare = baseline is not None and not in_baseline and day > baseline.end and baseline.scores and scores
    unseen = []
    if compare:
        for name in EQUIPMENT_FIELDS:
            for value in sorted(inputs[name]):
                if value != "(not recorded)" and value not in baseline.equipment[name]:
                    unseen.append({"field": name, "value": value, "images": inputs[name][value]})
    histogram = stats.histogram(scores)
    ks = stats.ks_test(baseline.scores, scores) if compare else None
    agreement, outcomes = _agreement(rows, model.threshold)
    values = {
        "computed_at": timezone.now(),
        "in_baseline": in_baseline,
        "predictions": len(rows),
        "studies": len(flags),
        "inputs": {name: dict(sorted(counter.items())) for name, counter in inputs.items()},
        "views_per_exam": len(rows) / len(flags) if flags else None,
        "unseen_equipment": unseen,
        "histogram": histogram,
        "score_mean": sum(scores) / len(scores) if scores else None,
        "psi": stats.psi(baseline.histogram, histogram) if compare else None,
        "ks_statistic": ks[0] if ks else None,
        "ks_p_value": ks[1] if ks else None,
        "flagged_studies": sum(flags.values()),
        "flag_rate": sum(flags.values()) / len(flags) if flags else None,
        "agreement": agreement,
        "outcomes": outcomes,
    }
    row, _ = ModelMonitoringDay.objects.update_or_create(model_version=model, day=day, defaults=values)
    return row


def monitored_models(model_ids: list[int] | None = None):
    models = ModelVersion.objects.filter(kind=ModelKind.MALIGNANCY, status__in=MONITORED)
    return models.filter(pk__in=model_ids) if model_ids else models


def monitoring_run(
    *,
    model_ids: list[int] | None = None,
    end: date | None = None,
    days: int | None = None,
    evaluate: bool = True,
    via: str = "",
    actor=None,
) -> dict:
    """Compute the last `days` days up to `end` (default: yesterday, a complete day) for each monitored model, then
    evaluate the stop rules on `end`. Safe to run twice: rows are replaced, a rule trips once per model and day."""
    from inference.monitoring.stop_rules import stop_rules_evaluate

    end = end or timezone.localdate() - timedelta(days=1)
    days = days or settings.MODEL_MONITORING_DAYS
    summary: dict = {"end": end.isoformat(), "days": days, "models": {}}
    for model in monitored_models(model_ids):
        with transaction.atomic():
            baseline = baseline_get(model)
            rows = [monitoring_day_compute(model, end - timedelta(days=back), baseline) for back in range(days)]
            computed = sum(1 for row in rows if row is not None)
            audit_record(
                action="model.monitoring_computed",
                actor=actor,
                obj=model,
                details={"name": model.name, "end": end.isoformat(), "days": days, "rows": computed, "via": via},
            )
        trips = stop_rules_evaluate(model=model, day=end) if evaluate else []
        summary["models"][model.name] = {"rows": computed, "trips": [trip.pk for trip in trips]}
    return summary


def monitoring_series(model: ModelVersion) -> dict:
    """A model's monitoring over time, as stored, with the CUSUM of its flag rate and its baseline: what the page
    charts and the API and exports return."""
    baseline = baseline_get(model)
    days = list(ModelMonitoringDay.objects.filter(model_version=model).order_by("day"))
    p0 = baseline.flag_rate if baseline else None
    sums = stats.cusum([(d.flag_rate, d.studies) for d in days], p0=p0)
    series = []
    for row, (upper, lower) in zip(days, sums, strict=True):
        series.append(
            {
                "day": row.day.isoformat(),
                "computed_at": row.computed_at.isoformat(),
                "in_baseline": row.in_baseline,
                "predictions": row.predictions,
                "studies": row.studies,
                "views_per_exam": row.views_per_exam,
                "inputs": row.inputs,
                "unseen_equipment": row.unseen_equipment,
                "histogram": row.histogram,
                "score_mean": row.score_mean,
                "psi": row.psi,
                "ks_statistic": row.ks_statistic,
                "ks_p_value": row.ks_p_value,
                "flagged_studies": row.flagged_studies,
                "flag_rate": row.flag_rate,
                "cusum_upper": upper,
                "cusum_lower": lower,
                "agreement_breast": row.agreement.get("breast", {}).get("rate"),
                "agreement_study": row.agreement.get("study", {}).get("rate"),
                "agreement": row.agreement,
                "sensitivity": row.outcomes.get("sensitivity"),
                "outcomes": row.outcomes,
            }
        )
    return {
        "model": {"id": model.pk, "name": model.name, "status": model.status, "threshold": model.threshold},
        "baseline": baseline.as_dict() if baseline else None,
        "limits": {
            "psi_watch": stats.PSI_WATCH,
            "psi_act": stats.PSI_ACT,
            "cusum_k": stats.CUSUM_K,
            "cusum_h": stats.CUSUM_H,
            "bins": list(stats.BIN_EDGES),
        },
        "pixel_statistics": "not computed: no stored pixel statistics; reading the working images back is not cheap",
        "days": series,
    }


@transaction.atomic
def monitoring_request(*, user, model: ModelVersion):
    """A lead or an administrator asks for a model's monitoring now (up to today, a partial day): through the outbox,
    to the worker. Audited."""
    from django.core.exceptions import PermissionDenied

    from accounts.roles import Capability, role_can
    from core.errors import ApplicationError
    from core.outbox import outbox_enqueue

    if not role_can(user, Capability.MODEL_MONITOR):
        raise PermissionDenied(f"Your role does not allow this ({Capability.MODEL_MONITOR}).")
    if model.kind != ModelKind.MALIGNANCY or model.status not in MONITORED:
        raise ApplicationError("Only the active and shadow malignancy models are monitored.")
    today = timezone.localdate()
    audit_record(
        action="model.monitoring_requested", actor=user, obj=model, details={"name": model.name, "end": str(today)}
    )
    return outbox_enqueue(
        key=f"model-monitoring:{model.pk}",
        task="inference.model_monitoring",
        kwargs={"model_ids": [model.pk], "end": today.isoformat(), "via": f"on demand by {user.get_username()}"},
        description=f"Monitoring of model {model.name}",
    )
