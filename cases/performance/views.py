"""The performance page (leads and auditors): the AI, each reader and the programme against recorded outcomes."""

from __future__ import annotations

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.permissions import capability_required
from accounts.roles import Capability
from cases.performance import performance
from cases.performance.cache import cached
from cases.performance.density import density_report
from cases.performance.plots import roc_png

NOT_ENOUGH = "not enough data"


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def _shown(p: performance.Proportion, of: str) -> dict:
    """A proportion as the page shows it: estimate, 95 % interval and what it rests on. Below the minimum of cases
    (performance.MIN_CASES) the figure is withheld and only its counts are shown."""
    basis = f"{p.successes} of {p.total} {of}" if p.total else f"0 {of}"
    if not p.enough:
        return {"enough": False, "value": NOT_ENOUGH, "ci": "", "basis": basis}
    return {"enough": True, "value": _pct(p.estimate), "ci": f"{_pct(p.low)[:-2]}–{_pct(p.high)}", "basis": basis}


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
        "minimum": performance.MIN_CASES,
        "readers": [_screening_row(r) for r in report.readers],
        "reads_by_ai": [_screening_row(r) for r in report.reads_by_ai],
        "programme": _screening_row(report.programme),
        "programme_all_final": _shown(report.programme_recall_all_final, "finalised studies"),
        "bcsc": {
            "sensitivity": _pct(report.benchmark.sensitivity),
            "specificity": _pct(report.benchmark.specificity),
            "recall_rate": _pct(report.benchmark.recall_rate),
        },
    }
    context["density"] = _density_context(request.user)
    return render(request, "performance/performance.html", context)


def _density_context(user) -> dict:
    """The page's breast density section (cases.performance.density), cached with the rest of the figures."""
    from django.contrib.auth import get_user_model

    report = cached(("density", performance.MIN_CASES), lambda: density_report())
    names = get_user_model().objects.in_bulk([reader_id for reader_id, _ in report.reader_technical_recall])
    return {
        "report": report,
        "readers": _agreement(report.readers),
        "reader_ai": _agreement(report.reader_ai),
        "by_density": [_screening_row(r) for r in report.by_density],
        "technical_recall": _shown(report.technical_recall, "finalised studies"),
        "reader_technical_recall": sorted(
            (
                (names[reader_id].get_full_name() or names[reader_id].get_username(), _shown(p, "reads"))
                for reader_id, p in report.reader_technical_recall
                if reader_id in names
            ),
            key=lambda row: row[0].lower(),
        ),
    }


def _agreement(a) -> dict:
    basis = f"{a.pairs} studies of {a.women} women"
    if not a.enough:
        return {"enough": False, "value": NOT_ENOUGH, "ci": "", "basis": basis}
    return {"enough": True, "value": f"{a.kappa:.2f}", "ci": f"{a.low:.2f}–{a.high:.2f}", "basis": basis}


@never_cache
@capability_required(Capability.PERFORMANCE_VIEW)
@require_GET
def performance_roc(request):
    png = performance.ai_roc_png(user=request.user, render=lambda curve: roc_png(curve, benchmark=performance.BCSC))
    if png is None:
        raise Http404(
            f"Not enough data for a ROC curve (it needs {performance.MIN_CASES} malignant and "
            f"{performance.MIN_CASES} non-malignant breasts with AI results)."
        )
    return HttpResponse(png, content_type="image/png")
