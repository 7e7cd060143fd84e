"""Pages for auditors and leads: the audit trail (browse, CSV export) and screening performance.

The audit pages show ids and names only: they never link to studies or image files (auditors see no patient
images). The selectors here take the requesting user like those in cases.selectors.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Max, QuerySet, TextField
from django.db.models.functions import Cast
from django.http import Http404, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.permissions import capability_required
from accounts.roles import Capability, Role, role_can
from cases import performance
from cases.audit import audit_record
from cases.models import AuditEvent

PAGE_SIZE = 50
EXPORT_BATCH = 1000
DETAILS_SHOWN = 160  # characters of the compact details before the rest folds away

# ---- audit trail: filters and selector ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditFilters:
    action: str = ""
    user: str = ""
    study: int | None = None
    date_from: date | None = None
    date_to: date | None = None
    text: str = ""

    def as_details(self) -> dict:
        """The filters that were set, as JSON-friendly values (for the export's own audit row)."""
        values = {k: v for k, v in asdict(self).items() if v not in ("", None)}
        return {k: v.isoformat() if isinstance(v, date) else v for k, v in values.items()}


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(required=False)
    user = forms.CharField(required=False, max_length=150, label="User name")
    study = forms.IntegerField(required=False, min_value=1, label="Study id")
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    text = forms.CharField(required=False, max_length=200, label="Text in details")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        actions = AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct()
        self.fields["action"].choices = [("", "Any action")] + [(a, a) for a in actions]

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise forms.ValidationError("The 'from' date is after the 'to' date.")
        return data

    def filters(self) -> AuditFilters:
        """The valid filters (an invalid field is left out, and shown as an error by the page)."""
        data = getattr(self, "cleaned_data", {})
        return AuditFilters(
            action=data.get("action") or "",
            user=(data.get("user") or "").strip(),
            study=data.get("study"),
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            text=(data.get("text") or "").strip(),
        )


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def audit_event_list(*, user, filters: AuditFilters) -> QuerySet[AuditEvent]:
    """Audit events matching the filters, newest first. Dates are whole days in the site's time zone."""
    if not role_can(user, Capability.AUDIT_VIEW):
        raise PermissionDenied(f"Your role does not allow this ({Capability.AUDIT_VIEW}).")
    events = AuditEvent.objects.all()
    if filters.action:
        events = events.filter(action=filters.action)
    if filters.user:
        events = events.filter(actor_username__icontains=filters.user)
    if filters.study is not None:
        events = events.filter(study_id=filters.study)
    if filters.date_from:
        events = events.filter(created_at__gte=_day_start(filters.date_from))
    if filters.date_to:
        events = events.filter(created_at__lt=_day_start(filters.date_to + timedelta(days=1)))
    if filters.text:
        events = events.annotate(details_text=Cast("details", TextField())).filter(details_text__icontains=filters.text)
    return events.order_by("-id")


# ---- audit trail: pages -------------------------------------------------------------------------------------------


def _compact(details: dict) -> str:
    return json.dumps(details, cls=DjangoJSONEncoder, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))


def _role_label(role: str) -> str:
    return Role(role).label if role in Role.values else role


@capability_required(Capability.AUDIT_VIEW)
@require_GET
def event_list(request):
    form = AuditFilterForm(request.GET or None)
    form.is_valid()
    filters = form.filters()
    page = Paginator(audit_event_list(user=request.user, filters=filters), PAGE_SIZE).get_page(request.GET.get("page"))
    actors = get_user_model().objects.in_bulk({e.actor_id for e in page if e.actor_id is not None})
    rows = []
    for event in page:
        actor = actors.get(event.actor_id)
        details = _compact(event.details)
        rows.append(
            {
                "event": event,
                "full_name": actor.get_full_name() if actor else "",
                "role": _role_label(event.actor_role),
                "details": details,
                "details_short": details if len(details) <= DETAILS_SHOWN else details[:DETAILS_SHOWN] + "…",
            }
        )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "audit/event_list.html",
        {"form": form, "page": page, "rows": rows, "query": query.urlencode(), "filtered": bool(filters.as_details())},
    )


CSV_HEADER = [
    "id",
    "time",
    "actor_id",
    "user",
    "role",
    "action",
    "object_type",
    "object_id",
    "study_id",
    "address",
    "details",
    "prev_hash",
    "hash",
]


class _Echo:
    """A file-like object whose write() hands the line back, so csv.writer feeds a generator."""

    def write(self, value: str) -> str:
        return value


def _cell(value) -> str:
    """Text that a spreadsheet would run as a formula is prefixed with an apostrophe (CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_lines(events: QuerySet[AuditEvent]) -> Iterator[str]:
    """Header, then the events newest first, read in keyset batches so memory stays constant."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    before = None
    while True:
        batch = events if before is None else events.filter(id__lt=before)
        batch = list(batch.order_by("-id")[:EXPORT_BATCH])
        if not batch:
            return
        for e in batch:
            yield writer.writerow(
                [
                    e.pk,
                    e.created_at.isoformat(),
                    e.actor_id if e.actor_id is not None else "",
                    _cell(e.actor_username),
                    e.actor_role,
                    _cell(e.action),
                    _cell(e.object_type),
                    _cell(e.object_id),
                    e.study_id if e.study_id is not None else "",
                    e.ip_address or "",
                    json.dumps(e.details, cls=DjangoJSONEncoder, ensure_ascii=False, sort_keys=True),
                    e.prev_hash,
                    e.hash,
                ]
            )
        before = batch[-1].pk


@capability_required(Capability.AUDIT_VIEW)
@require_GET
def export(request):
    form = AuditFilterForm(request.GET or None)
    if request.GET and not form.is_valid():
        return HttpResponseBadRequest("Invalid filters: " + "; ".join(e for errs in form.errors.values() for e in errs))
    filters = form.filters()
    # Fix the rows before recording the export: the export's own event (and any later one) is not in it, and the
    # row count written to the trail is exactly what the file holds.
    last_id = AuditEvent.objects.aggregate(last=Max("id"))["last"] or 0
    events = audit_event_list(user=request.user, filters=filters).filter(id__lte=last_id)
    rows = events.count()
    audit_record(action="audit.exported", actor=request.user, details={"filters": filters.as_details(), "rows": rows})
    response = StreamingHttpResponse(_csv_lines(events), content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.csv"'
    response["Cache-Control"] = "no-store"
    return response


# ---- performance --------------------------------------------------------------------------------------------------


NOT_ENOUGH = "not enough data"


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def _shown(p: performance.Proportion, of: str) -> dict:
    """A proportion as the page shows it: estimate, 95 % interval and what it rests on."""
    if not p.enough:
        return {"enough": False, "value": NOT_ENOUGH, "ci": "", "basis": f"0 {of}"}
    return {
        "enough": True,
        "value": _pct(p.estimate),
        "ci": f"{_pct(p.low)[:-2]}–{_pct(p.high)}",
        "basis": f"{p.successes} of {p.total} {of}",
    }


def _screening_row(s: performance.ScreeningPerformance) -> dict:
    return {
        "label": s.label,
        "studies": s.studies,
        # Sensitivity, specificity, recall rate: in the table's column order.
        "figures": [
            _shown(s.sensitivity, "cancers"),
            _shown(s.specificity, "non-cancers"),
            _shown(s.recall_rate, "studies"),
        ],
    }


@capability_required(Capability.PERFORMANCE_VIEW)
@require_GET
def performance_page(request):
    report = performance.performance_report(user=request.user)
    ai = report.ai
    context = {
        "report": report,
        "ai_sensitivity": _shown(ai.sensitivity, "malignant breasts"),
        "ai_specificity": _shown(ai.specificity, "non-malignant breasts"),
        "ai_auc": {
            "enough": ai.auc is not None,
            "value": f"{ai.auc:.3f}" if ai.auc is not None else NOT_ENOUGH,
            "ci": f"{ai.auc_low:.3f}–{ai.auc_high:.3f}" if ai.auc_low is not None else "",
            "basis": f"{ai.cancers} malignant and {ai.non_cancers} non-malignant breasts",
        },
        "readers": [_screening_row(r) for r in report.readers],
        "programme": _screening_row(report.programme),
        "programme_all_final": _shown(report.programme_recall_all_final, "finalised studies"),
        "bcsc": {
            "sensitivity": _pct(report.benchmark.sensitivity),
            "specificity": _pct(report.benchmark.specificity),
            "recall_rate": _pct(report.benchmark.recall_rate),
        },
    }
    return render(request, "audit/performance.html", context)


@never_cache
@capability_required(Capability.PERFORMANCE_VIEW)
@require_GET
def performance_roc(request):
    curve = performance.ai_roc_curve(user=request.user)
    if curve is None:
        raise Http404("Not enough data for a ROC curve (it needs both cancers and non-cancers with AI results).")
    return HttpResponse(roc_png(curve, benchmark=performance.BCSC), content_type="image/png")


def roc_png(curve: performance.RocCurve, *, benchmark: performance.Benchmark) -> bytes:
    """The ROC curve as a PNG, drawn with matplotlib's Agg canvas (no pyplot: no global state between requests)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.2, 5), dpi=100)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle=":", color="#999999", linewidth=1, label="Chance")
    ax.plot(
        curve.false_positive_rate,
        curve.true_positive_rate,
        color="#1f5fa8",
        linewidth=2,
        label=f"AI per breast (AUC {curve.auc:.3f})",
    )
    if curve.operating_point is not None:
        ax.plot(*curve.operating_point, "o", color="#b3261e", markersize=8, label="AI at its threshold")
    ax.plot(
        1 - benchmark.specificity,
        benchmark.sensitivity,
        "s",
        color="#1e7b3a",
        markersize=7,
        label="BCSC radiologists (per exam)",
    )
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("1 − specificity (false-positive rate)")
    ax.set_ylabel("Sensitivity (true-positive rate)")
    ax.set_title(f"{curve.positives} malignant, {curve.negatives} non-malignant breasts", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
