"""The strategies page (leads and auditors) beside the performance page: a stored report, its plots and exports,
and the lead's button to compute it again. Nothing here computes figures."""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts.permissions import capability_required
from accounts.roles import Capability
from cases.models import StrategyReport
from cases.performance.strategy_forms import StrategyRequestForm
from cases.performance.strategy_presenters import (
    strategies_page_context,
    strategy_report_csv,
    strategy_report_document,
)
from cases.performance.strategy_selectors import strategy_report_get, strategy_report_state
from cases.performance.strategy_services import can_request_strategy_report, strategy_report_request


@never_cache
@capability_required(Capability.PERFORMANCE_VIEW)
@require_GET
def strategies_page(request):
    state = strategy_report_state(user=request.user)
    context = strategies_page_context(state.shown) if state.shown else {"report": None}
    can_request = can_request_strategy_report(request.user)
    initial = {}
    if state.shown:
        parameters = state.shown.parameters
        initial = {
            "split_date": parameters.get("split_date"),
            "extra_recall_budget_per_1000": parameters.get("extra_recall_budget_per_1000"),
        }
    context |= {
        "pending": state.pending,
        "failed": state.failed,
        "can_request": can_request,
        "form": StrategyRequestForm(initial=initial) if can_request else None,
    }
    return render(request, "performance/strategies.html", context)


@capability_required(Capability.PERFORMANCE_VIEW)
@require_POST
def strategies_request(request):
    if not can_request_strategy_report(request.user):
        raise PermissionDenied("Only lead radiologists may ask for the strategies report to be computed.")
    form = StrategyRequestForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("performance:strategies")
    strategy_report_request(
        user=request.user,
        trigger=StrategyReport.Trigger.REQUEST,
        parameters=form.parameters(),
        model_version=form.cleaned_data.get("model_version"),
    )
    messages.success(request, "The strategies report is being computed; this page shows it when it is ready.")
    return redirect("performance:strategies")


def _report(request, pk: int) -> StrategyReport:
    report = strategy_report_get(user=request.user, pk=pk)
    if report is None:
        raise Http404("No computed strategies report with that number.")
    return report


@capability_required(Capability.PERFORMANCE_VIEW)
@require_GET
def strategies_csv(request, pk: int):
    report = _report(request, pk)
    response = HttpResponse(strategy_report_csv(report), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="strategies-{report.pk}.csv"'
    return response


@capability_required(Capability.PERFORMANCE_VIEW)
@require_GET
def strategies_json(request, pk: int):
    report = _report(request, pk)
    body = json.dumps(strategy_report_document(report), indent=1, allow_nan=False)
    response = HttpResponse(body, content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="strategies-{report.pk}.json"'
    return response


@capability_required(Capability.PERFORMANCE_VIEW)
@require_GET
def strategies_plot(request, pk: int, plot: str):
    report = _report(request, pk)
    png = {"triage": report.triage_png, "safety-net": report.safety_net_png}.get(plot)
    if not png:
        raise Http404("No such plot.")
    return HttpResponse(bytes(png), content_type="image/png")
