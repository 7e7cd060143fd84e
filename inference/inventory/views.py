"""The AI inventory pages: every model (malignancy and density) with its version, vendor, status, validation and
history (administrators and lead radiologists); importing a model and changing a model's status (administrators);
the inventory as CSV and JSON for the governance group."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.permissions import capability_required
from accounts.roles import Capability, role_can
from audit.services import audit_record
from core.errors import ApplicationError
from inference.imports.manifest import published_figures
from inference.imports.services import ImportRefused, model_version_import
from inference.inventory.export import inventory_csv, inventory_json
from inference.inventory.forms import ModelImportForm, StatusChangeForm
from inference.inventory.selectors import local_acceptance, model_inventory, model_version_get
from inference.lifecycle import allowed_transitions, model_version_status_change
from inference.models import ModelKind, ModelStatus, Prediction
from inference.monitoring.stop_rules import open_alerts


@capability_required(Capability.MODEL_VIEW)
def model_inventory_page(request):
    kind = request.GET.get("kind", "")
    kind = kind if kind in ModelKind.values else ""
    versions = list(model_inventory(user=request.user, kind=kind))
    rows = [
        {
            "version": v,
            "published": published_figures(v.manifest),
            "last": (list(v.status_changes.all()) or [None])[-1],
            "acceptance": local_acceptance(v),
        }
        for v in versions
    ]
    context = {
        "rows": rows,
        "kind": kind,
        "kinds": ModelKind.choices,
        "can_manage": role_can(request.user, Capability.MODEL_MANAGE),
        "statuses": ModelStatus.choices,
        "model_alerts": list(open_alerts()) if role_can(request.user, Capability.MODEL_MONITOR) else [],
    }
    return render(request, "models/inventory.html", context)


@capability_required(Capability.MODEL_VIEW)
def model_detail_page(request, pk: int):
    return _model_detail(request, model_version_get(user=request.user, pk=pk))


def _model_detail(request, version, *, status_form=None):
    """The model's page; with a refused status change, that form again with its errors (HTTP 400)."""
    can_manage = role_can(request.user, Capability.MODEL_MANAGE)
    allowed = allowed_transitions(version.status)
    if version.status == ModelStatus.SUSPENDED and not role_can(request.user, Capability.MODEL_RESUME):
        allowed = [status for status in allowed if status != ModelStatus.ACTIVE]  # a lead resumes, from monitoring
    context = {
        "version": version,
        "published": published_figures(version.manifest),
        "acceptance": local_acceptance(version),
        "history": list(version.status_changes.all()),
        "can_manage": can_manage,
        "can_monitor": role_can(request.user, Capability.MODEL_MONITOR),
        "can_view_acceptance": True,
        # Shadow analyses are counted here and measured on the acceptance page, never shown image by image.
        "shadow_analyses": Prediction.all_objects.filter(model_version=version, shadow=True).count(),
        "status_form": status_form
        if status_form is not None
        else (StatusChangeForm(allowed=allowed) if can_manage and allowed else None),
    }
    return render(request, "models/detail.html", context, status=400 if status_form is not None else 200)


@require_POST
@capability_required(Capability.MODEL_MANAGE)
def model_status_change_page(request, pk: int):
    version = model_version_get(user=request.user, pk=pk)
    form = StatusChangeForm(request.POST, allowed=allowed_transitions(version.status))
    if not form.is_valid():
        return _model_detail(request, version, status_form=form)
    try:
        model_version_status_change(
            model_version=version,
            to_status=form.cleaned_data["to_status"],
            reason=form.cleaned_data["reason"],
            actor=request.user,
            confirm_unvalidated=form.cleaned_data["confirm_unvalidated"],
            for_research=form.cleaned_data["for_research"],
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{version.name} is now {version.get_status_display().lower()}.")
    return redirect("models:detail", pk=pk)


@capability_required(Capability.MODEL_MANAGE)
def model_import_page(request):
    form = ModelImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["model_file"]
        try:
            if getattr(upload, "too_large", False):
                raise ImportRefused(
                    "The file is larger than the platform accepts in one upload (MAMMO_MAX_FILE_BYTES)."
                )
            path = upload.temporary_file_path() if hasattr(upload, "temporary_file_path") else None
            if not path:
                raise ImportRefused("The upload did not reach the server's disk; try again.")
            version = model_version_import(
                file_path=path, filename=upload.name, manifest=form.manifest(), actor=request.user, via="import page"
            )
        except forms.ValidationError as exc:
            form.add_error("manifest_file", exc)
        except ImportRefused as exc:
            if exc.errors:
                form.show_manifest_errors(exc.errors)
            form.add_error(None, exc.message)
            return render(request, "models/import.html", {"form": form, "report": exc.report}, status=400)
        else:
            messages.success(request, f"{version.name} imported: it passed the conformance check. Status: imported.")
            return redirect("models:detail", pk=version.pk)
    return render(request, "models/import.html", {"form": form}, status=400 if form.errors else 200)


@capability_required(Capability.MODEL_VIEW)
def model_inventory_export(request, fmt: str):
    versions = list(model_inventory(user=request.user))
    audit_record(action="model.inventory_exported", actor=request.user, details={"format": fmt, "rows": len(versions)})
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
    if fmt == "csv":
        response = HttpResponse(inventory_csv(versions), content_type="text/csv; charset=utf-8")
    else:
        response = HttpResponse(inventory_json(versions), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="ai-inventory-{stamp}.{fmt}"'
    response["Cache-Control"] = "no-store"
    return response
