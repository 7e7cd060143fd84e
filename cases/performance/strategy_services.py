"""Writes for the screening-strategies report: asking for a computation (when an outcome is recorded, or when a
lead asks) and computing it in the Celery worker (cases.tasks.compute_strategy_report). Pages never compute it.

Asking is cheap and coalesces: while a computation with the same parameters is still queued, a new outcome joins
it (the worker reads the data when it starts, so that outcome is included) instead of queueing another. Computing
is idempotent: a row already computed or failed is left alone; a row found "computing" is taken over, because its
message only comes back when the worker computing it died (acks_late, or the outbox sweep: core.outbox).
"""

from __future__ import annotations

import logging
import time
import traceback

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from accounts.roles import Capability, role_can
from audit.services import audit_record
from cases.models import StrategyReport
from cases.performance.strategy_plots import safety_net_png, triage_png
from cases.performance.strategy_report import ModelInfo, StrategyParameters, strategies_report
from cases.performance.strategy_selectors import strategy_screens
from core.outbox import outbox_enqueue
from inference.models import ModelVersion

logger = logging.getLogger(__name__)
TASK_NAME = "cases.compute_strategy_report"
FAILED_MESSAGE = "The strategies report could not be computed. Ask for it again; engineers have the detail."


def _request_computation(report: StrategyReport) -> None:
    """In the caller's transaction (core.outbox): sent to the worker after the commit."""
    outbox_enqueue(
        key=f"strategy-report:{report.pk}",
        task=TASK_NAME,
        kwargs={"report_id": report.pk},
        description=f"Screening strategies report {report.pk}",
    )


def can_request_strategy_report(user) -> bool:
    """Leads, who record the outcomes, may ask for a computation; auditors only read."""
    return role_can(user, Capability.PERFORMANCE_VIEW) and role_can(user, Capability.OUTCOME_RECORD)


@transaction.atomic
def strategy_report_request(
    *,
    user,
    trigger: str,
    parameters: StrategyParameters | None = None,
    model_version: ModelVersion | None = None,
) -> StrategyReport:
    """Queue a computation, or join the one already queued with the same parameters; sent to the worker on commit.

    Without parameters, those of the newest report are kept (a lead's chosen recall budget stays); without a model
    version, the active one is used (None when no model is active: the AI strategies then show nothing to replay).
    """
    if trigger == StrategyReport.Trigger.REQUEST and not can_request_strategy_report(user):
        raise PermissionDenied("Only lead radiologists may ask for the strategies report to be computed.")
    if trigger == StrategyReport.Trigger.OUTCOME and not role_can(user, Capability.OUTCOME_RECORD):
        raise PermissionDenied(f"Your role does not allow this ({Capability.OUTCOME_RECORD}).")
    if parameters is None:
        newest = StrategyReport.objects.values_list("parameters", flat=True).first()
        parameters = StrategyParameters.from_dict(newest) if newest else StrategyParameters()
    if model_version is None:
        model_version = ModelVersion.objects.malignancy().active().first()
    values = parameters.as_dict()
    queued = (
        StrategyReport.objects.select_for_update()
        .filter(status=StrategyReport.Status.QUEUED, model_version=model_version, parameters=values)
        .first()
    )
    report = queued or StrategyReport.objects.create(
        trigger=trigger, requested_by=user, model_version=model_version, parameters=values
    )
    if trigger == StrategyReport.Trigger.REQUEST:
        audit_record(
            action="strategies.requested",
            actor=user,
            obj=report,
            details={"parameters": values, "model_version": model_version.name if model_version else None},
        )
    if queued is None or trigger == StrategyReport.Trigger.REQUEST:
        _request_computation(report)  # a lead asking again also asks again for a queued row's computation
    return report


def strategy_report_compute(*, report_id: int) -> StrategyReport | None:
    """Compute a queued report (in the worker). Safe to run twice."""
    with transaction.atomic():
        report = (
            StrategyReport.objects.select_for_update(of=("self",))
            .select_related("model_version")
            .filter(pk=report_id)
            .first()
        )
        if report is None or report.status in (StrategyReport.Status.SUCCEEDED, StrategyReport.Status.FAILED):
            return report
        report.status, report.started_at = StrategyReport.Status.RUNNING, timezone.now()
        report.save(update_fields=["status", "started_at"])
    started = time.perf_counter()
    try:
        figures = _figures(report)
        triage, safety_net = triage_png(figures), safety_net_png(figures)
    except Exception:  # noqa: BLE001  (any failure is recorded on the row for people and engineers)
        logger.exception("Strategies report %s failed", report_id)
        StrategyReport.objects.filter(pk=report_id).update(
            status=StrategyReport.Status.FAILED,
            finished_at=timezone.now(),
            error_message=FAILED_MESSAGE,
            error_detail=traceback.format_exc(),
        )
    else:
        StrategyReport.objects.filter(pk=report_id).update(
            status=StrategyReport.Status.SUCCEEDED,
            finished_at=timezone.now(),
            figures=figures,
            triage_png=triage,
            safety_net_png=safety_net,
            duration_ms=round(1000 * (time.perf_counter() - started)),
        )
    return StrategyReport.objects.get(pk=report_id)


def _figures(report: StrategyReport) -> dict:
    version = report.model_version
    selection = strategy_screens(model_version=version)
    model = ModelInfo(version.name, version.threshold, version.validation.validated) if version else None
    figures = strategies_report(
        selection.screens, model=model, parameters=StrategyParameters.from_dict(report.parameters)
    )
    figures["excluded_studies"] = selection.excluded
    figures["model_validation"] = version.validation.as_dict() if version else None
    return figures
