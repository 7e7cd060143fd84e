"""The monitoring page of a model (/models/<id>/monitoring/): its charts over time with control limits, its stop
rules and trips; running the monitoring now, editing stop rules (model.monitor: leads and administrators) and
resuming a suspended model (model.resume: lead radiologists only). Exports for the governance group."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.permissions import capability_required
from accounts.roles import Capability, role_can
from audit.services import audit_record
from core.errors import ApplicationError
from inference.inventory.selectors import model_version_get
from inference.models import ModelStatus, StopRule
from inference.monitoring.charts import monitoring_charts
from inference.monitoring.compute import MONITORED, monitoring_request, monitoring_series
from inference.monitoring.export import monitoring_csv, monitoring_json
from inference.monitoring.stop_rules import model_resume, stop_rule_save


class StopRuleForm(forms.ModelForm):
    scope = forms.ChoiceField(choices=[("model", "This model"), ("kind", "Every model of its kind")])

    class Meta:
        model = StopRule
        fields = ["rule_type", "low", "high", "consecutive_days", "threshold", "enabled"]


class ResumeForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)
    confirm_unvalidated = forms.BooleanField(required=False, label="The model is not validated: resume it anyway")


@capability_required(Capability.MODEL_MONITOR)
def model_monitoring_page(request, pk: int):
    version = model_version_get(user=request.user, pk=pk)
    series = monitoring_series(version)
    rules = StopRule.objects.filter(model_version=version) | StopRule.objects.filter(
        model_version__isnull=True, model_kind=version.kind
    )
    context = {
        "version": version,
        "series": series,
        "recent": list(reversed(series["days"][-14:])),
        "charts": monitoring_charts(series),
        "rules": rules.select_related("model_version"),
        "trips": version.stop_rule_trips.select_related("rule")[:50],
        "rule_form": StopRuleForm(initial={"scope": "model"}),
        "monitored": version.status in MONITORED and version.kind == "malignancy",
        "can_resume": role_can(request.user, Capability.MODEL_RESUME) and version.status == ModelStatus.SUSPENDED,
        "resume_form": ResumeForm(),
    }
    return render(request, "models/monitoring.html", context)


@require_POST
@capability_required(Capability.MODEL_MONITOR)
def model_monitoring_run_page(request, pk: int):
    version = model_version_get(user=request.user, pk=pk)
    try:
        monitoring_request(user=request.user, model=version)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "The monitoring is being computed; reload the page in a moment.")
    return redirect("models:monitoring", pk=pk)


@require_POST
@capability_required(Capability.MODEL_MONITOR)
def stop_rule_create_page(request, pk: int):
    version = model_version_get(user=request.user, pk=pk)
    form = StopRuleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Check the stop rule's fields.")
        return redirect("models:monitoring", pk=pk)
    rule = form.save(commit=False)
    if form.cleaned_data["scope"] == "model":
        rule.model_version, rule.model_kind = version, ""
    else:
        rule.model_version, rule.model_kind = None, version.kind
    try:
        stop_rule_save(user=request.user, rule=rule)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Stop rule saved: {rule.describe()}.")
    return redirect("models:monitoring", pk=pk)


@require_POST
@capability_required(Capability.MODEL_MONITOR)
def stop_rule_toggle_page(request, pk: int, rule_id: int):
    model_version_get(user=request.user, pk=pk)
    rule = get_object_or_404(StopRule, pk=rule_id)
    stop_rule_save(user=request.user, rule=rule, changes={"enabled": not rule.enabled})
    messages.success(request, f"Stop rule {rule.pk} {'enabled' if rule.enabled else 'disabled'}.")
    return redirect("models:monitoring", pk=pk)


@require_POST
@capability_required(Capability.MODEL_RESUME)
def model_resume_page(request, pk: int):
    version = model_version_get(user=request.user, pk=pk)
    form = ResumeForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give the reason for resuming the model.")
        return redirect("models:monitoring", pk=pk)
    try:
        model_resume(
            model_version=version,
            user=request.user,
            reason=form.cleaned_data["reason"],
            confirm_unvalidated=form.cleaned_data["confirm_unvalidated"],
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    except PermissionDenied:
        raise
    else:
        messages.success(request, f"{version.name} is active again.")
    return redirect("models:monitoring", pk=pk)


@capability_required(Capability.MODEL_MONITOR)
def model_monitoring_export(request, pk: int, fmt: str):
    version = model_version_get(user=request.user, pk=pk)
    series = monitoring_series(version)
    audit_record(
        action="model.monitoring_exported",
        actor=request.user,
        obj=version,
        details={"name": version.name, "format": fmt, "days": len(series["days"])},
    )
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
    if fmt == "csv":
        response = HttpResponse(monitoring_csv(series), content_type="text/csv; charset=utf-8")
    else:
        response = HttpResponse(monitoring_json(series), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="model-{version.pk}-monitoring-{stamp}.{fmt}"'
    response["Cache-Control"] = "no-store"
    return response
