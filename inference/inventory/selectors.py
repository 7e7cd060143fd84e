"""Reads of the AI inventory (every model of every kind, its status, validation and history) for the inventory
pages, the API and the exports. Administrators and lead radiologists read it (model.view)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch, QuerySet
from django.http import Http404

from accounts.roles import Capability, role_can
from inference.imports.manifest import published_figures
from inference.models import ModelStatusChange, ModelVersion


def _require(user, capability: Capability) -> None:
    if not role_can(user, capability):
        raise PermissionDenied(f"Your role does not allow this ({capability}).")


def model_inventory(*, user, kind: str = "", status: str = "") -> QuerySet[ModelVersion]:
    """Every model (both kinds), newest first within its kind, with its history prefetched."""
    _require(user, Capability.MODEL_VIEW)
    versions = (
        ModelVersion.objects.select_related("imported_by")
        .prefetch_related(
            Prefetch("status_changes", queryset=ModelStatusChange.objects.select_related("changed_by").order_by("pk"))
        )
        .order_by("kind", "-created_at")
    )
    if kind:
        versions = versions.filter(kind=kind)
    if status:
        versions = versions.filter(status=status)
    return versions


def model_version_get(*, user, pk: int) -> ModelVersion:
    version = model_inventory(user=user).filter(pk=pk).first()
    if version is None:
        raise Http404("No such model.")
    return version


def history_record(change: ModelStatusChange) -> dict:
    return {
        "at": change.created_at.isoformat(),
        "from": change.from_status or None,
        "to": change.to_status,
        "by": change.changed_by_name,
        "reason": change.reason,
        "acceptance_report_id": change.acceptance_report_id,
    }


def inventory_record(version: ModelVersion, *, with_history: bool = True) -> dict:
    """One model as the governance group's export and the API describe it."""
    validation = version.validation
    record = {
        "id": version.pk,
        "name": version.name,
        "kind": version.kind,
        "version": version.version_label,
        "vendor": version.vendor,
        "runtime": version.runtime,
        "status": version.status,
        "is_active": version.is_active,
        "validated": bool(validation.validated),
        "validation": validation.statement,
        "published_validation": published_figures(version.manifest),
        "licence": (version.manifest or {}).get("licence", ""),
        "intended_use": (version.manifest or {}).get("intended_use", ""),
        "operating_point": version.threshold if version.kind == ModelVersion.Kind.MALIGNANCY else None,
        "file_sha256": version.file_sha256,
        "imported_by": version.imported_by.get_username() if version.imported_by else version.imported_via,
        "imported_via": version.imported_via,
        "imported_at": version.created_at.isoformat(),
        "status_changed_at": version.status_changed_at.isoformat() if version.status_changed_at else None,
        "activated_at": version.activated_at.isoformat() if version.activated_at else None,
        "ms_per_image": version.ms_per_image,
        "gives_heatmap": version.gives_heatmap,
    }
    record["local_acceptance"] = local_acceptance(version)
    if with_history:
        record["history"] = [history_record(change) for change in version.status_changes.all()]
    return record


def local_acceptance(version: ModelVersion) -> dict | None:
    """ "Accepted at this site on <date> by <lead>": the signed-off acceptance report its latest acceptance rests
    on, with the figures measured here; None when it was never accepted at this site (or only for research use)."""
    from inference.models import ModelStatusChange

    change = (
        ModelStatusChange.objects.filter(model_version=version, acceptance_report__isnull=False)
        .select_related("acceptance_report__signed_off_by")
        .order_by("-created_at", "-pk")
        .first()
    )
    if change is None:
        return None
    report = change.acceptance_report
    model = (report.figures or {}).get("model", {})
    return {
        "report_id": report.pk,
        "signed_off_at": report.signed_off_at.isoformat() if report.signed_off_at else None,
        "signed_off_by": report.signed_off_by.get_username() if report.signed_off_by else "",
        "statement": f"Accepted at this site on {report.signed_off_at:%Y-%m-%d} by "
        f"{report.signed_off_by.get_username() if report.signed_off_by else '?'}",
        "auc": (model.get("auc") or {}).get("value"),
        "sensitivity": (model.get("sensitivity") or {}).get("value"),
        "specificity": (model.get("specificity") or {}).get("value"),
    }
