"""/models/<id>/acceptance/: the model's acceptance protocols and reports (anyone who may see the inventory), the
protocol form, computing a report and signing off a passing one (leads: model.accept), JSON and CSV exports."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.permissions import capability_required
from accounts.roles import Capability, role_can
from audit.services import audit_record
from core.errors import ApplicationError
from inference.acceptance.forms import AcceptanceProtocolForm, SignOffForm
from inference.acceptance.services import (
    acceptance_model_get,
    acceptance_protocol_lock,
    acceptance_report_compute,
    acceptance_report_csv,
    acceptance_report_get,
    acceptance_report_json,
    acceptance_report_sign_off,
)
from inference.models import AcceptanceProtocol


@capability_required(Capability.MODEL_VIEW)
def acceptance_page(request, pk: int):
    return _acceptance_page(request, acceptance_model_get(user=request.user, pk=pk))


def _acceptance_page(request, version, *, protocol_form=None):
    """The page; with a refused protocol, that form again with its error summary (HTTP 400)."""
    can_accept = role_can(request.user, Capability.MODEL_ACCEPT)
    protocols = list(
        version.acceptance_protocols.select_related("written_by").prefetch_related("reports__signed_off_by")
    )
    context = {
        "version": version,
        "protocols": protocols,
        "can_accept": can_accept,
        "protocol_form": protocol_form or (AcceptanceProtocolForm() if can_accept else None),
        "sign_off_form": SignOffForm() if can_accept else None,
    }
    return render(request, "models/acceptance.html", context, status=400 if protocol_form is not None else 200)


@require_POST
@capability_required(Capability.MODEL_ACCEPT)
def acceptance_protocol_page(request, pk: int):
    version = acceptance_model_get(user=request.user, pk=pk)
    form = AcceptanceProtocolForm(request.POST)
    if not form.is_valid():
        return _acceptance_page(request, version, protocol_form=form)
    try:
        acceptance_protocol_lock(user=request.user, model_version=version, **form.cleaned_data)
    except ApplicationError as exc:
        form.add_error(None, exc.message)
        return _acceptance_page(request, version, protocol_form=form)
    messages.success(request, "The protocol is locked. Compute its report when the period's outcomes are in.")
    return redirect("models:acceptance", pk=pk)


@require_POST
@capability_required(Capability.MODEL_ACCEPT)
def acceptance_compute_page(request, pk: int, protocol_id: int):
    version = acceptance_model_get(user=request.user, pk=pk)
    protocol = AcceptanceProtocol.objects.filter(pk=protocol_id, model_version=version).first()
    if protocol is None:
        messages.error(request, "No such protocol.")
        return redirect("models:acceptance", pk=pk)
    report = acceptance_report_compute(user=request.user, protocol=protocol)
    messages.success(request, f"Report {report.pk}: {report.get_result_display()}.")
    return redirect("models:acceptance", pk=pk)


@require_POST
@capability_required(Capability.MODEL_ACCEPT)
def acceptance_sign_off_page(request, pk: int, report_id: int):
    version = acceptance_model_get(user=request.user, pk=pk)
    report = acceptance_report_get(user=request.user, model_version=version, pk=report_id)
    form = SignOffForm(request.POST)
    form.is_valid()
    try:
        acceptance_report_sign_off(user=request.user, report=report, note=form.cleaned_data.get("note", ""))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Signed off: {version.name} is accepted at this site.")
    return redirect("models:acceptance", pk=pk)


@capability_required(Capability.MODEL_VIEW)
def acceptance_export(request, pk: int, report_id: int, fmt: str):
    version = acceptance_model_get(user=request.user, pk=pk)
    report = acceptance_report_get(user=request.user, model_version=version, pk=report_id)
    audit_record(
        action="model.acceptance_exported", actor=request.user, obj=report, details={"format": fmt, "report": report.pk}
    )
    if fmt == "csv":
        response = HttpResponse(acceptance_report_csv(report), content_type="text/csv; charset=utf-8")
    else:
        response = HttpResponse(acceptance_report_json(report), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="acceptance-report-{report.pk}.{fmt}"'
    response["Cache-Control"] = "no-store"
    return response
