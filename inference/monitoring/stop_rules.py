"""Stop rules (StopRule): a site's conditions under which a model stops. Evaluated after each day's monitoring
(inference.monitoring.compute.monitoring_run) on that day's row. A rule that trips records a StopRuleTrip (once
per rule, model and day), suspends an active model through the lifecycle (a shadow model reaches no reader: its
trip is only reported), tells the lead radiologists (the alert list on the inventory and worklist pages; e-mail
when EMAIL_HOST is configured) and is audited. Only a lead radiologist resumes a suspended model (model_resume)."""

from __future__ import annotations

import logging
from datetime import date, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.roles import Capability, Role, role_can
from audit.services import audit_record
from core.errors import ApplicationError
from inference.lifecycle import model_version_status_change
from inference.models import ModelMonitoringDay, ModelStatus, ModelVersion, StopRule, StopRuleTrip

logger = logging.getLogger(__name__)
T = StopRule.Type


def stop_rules_for(model: ModelVersion):
    return StopRule.objects.filter(enabled=True).filter(
        Q(model_version=model) | Q(model_version__isnull=True, model_kind=model.kind)
    )


def _check(rule: StopRule, model: ModelVersion, day: date, row: ModelMonitoringDay | None) -> dict | None:
    """The figures that trip `rule` on `day`, or None."""
    if rule.rule_type == T.FLAG_RATE:
        n = max(1, rule.consecutive_days)
        start = day - timedelta(days=n - 1)
        rows = {r.day: r for r in ModelMonitoringDay.objects.filter(model_version=model, day__range=(start, day))}
        rates = []
        for offset in range(n):
            r = rows.get(start + timedelta(days=offset))
            if r is None or r.flag_rate is None:
                return None
            outside = (rule.low is not None and r.flag_rate < rule.low) or (
                rule.high is not None and r.flag_rate > rule.high
            )
            if not outside:
                return None
            rates.append({"day": r.day.isoformat(), "flag_rate": round(r.flag_rate, 4), "studies": r.studies})
        return {"low": rule.low, "high": rule.high, "consecutive_days": n, "days": rates}
    if row is None:
        return None
    if rule.rule_type == T.UNSEEN_EQUIPMENT:
        return {"unseen": row.unseen_equipment} if row.unseen_equipment else None
    if rule.rule_type == T.PSI_ABOVE:
        if row.psi is not None and rule.threshold is not None and row.psi > rule.threshold:
            return {"psi": round(row.psi, 4), "threshold": rule.threshold, "predictions": row.predictions}
        return None
    if rule.rule_type == T.KS_P_BELOW:
        if row.ks_p_value is not None and rule.threshold is not None and row.ks_p_value < rule.threshold:
            return {
                "ks_statistic": round(row.ks_statistic, 4),
                "ks_p_value": row.ks_p_value,
                "threshold": rule.threshold,
                "predictions": row.predictions,
            }
        return None
    return None


def _figures_text(figures: dict) -> str:
    if "days" in figures:
        return "flag rate " + ", ".join(
            f"{d['day']}: {d['flag_rate']:.3f} ({d['studies']} studies)" for d in figures["days"]
        )
    if "unseen" in figures:
        return "not in the baseline: " + ", ".join(
            f"{u['field']} {u['value']!r} ({u['images']} images)" for u in figures["unseen"]
        )
    if "psi" in figures:
        return f"PSI {figures['psi']} > {figures['threshold']} ({figures['predictions']} images)"
    return f"KS D {figures['ks_statistic']}, p {figures['ks_p_value']:.3g} < {figures['threshold']}"


def stop_rules_evaluate(*, model: ModelVersion, day: date) -> list[StopRuleTrip]:
    """Evaluate every enabled rule of `model` on `day`; the trips made now (a rule trips once per model and day)."""
    row = ModelMonitoringDay.objects.filter(model_version=model, day=day).first()
    trips = []
    for rule in stop_rules_for(model).select_related("model_version"):
        figures = _check(rule, model, day, row)
        if figures is not None:
            trip = stop_rule_trip(rule=rule, model=model, day=day, figures=figures)
            if trip is not None:
                trips.append(trip)
    return trips


@transaction.atomic
def stop_rule_trip(*, rule: StopRule, model: ModelVersion, day: date, figures: dict) -> StopRuleTrip | None:
    model = ModelVersion.objects.select_for_update().get(pk=model.pk)
    if StopRuleTrip.objects.filter(rule=rule, model_version=model, day=day).exists():
        return None
    reason = f"Stop rule {rule.pk} tripped on {day.isoformat()}: {rule.describe()}; {_figures_text(figures)}."
    suspend = model.status == ModelStatus.ACTIVE
    trip = StopRuleTrip.objects.create(
        rule=rule, model_version=model, day=day, figures=figures, reason=reason, suspended=suspend
    )
    if suspend:
        model_version_status_change(
            model_version=model, to_status=ModelStatus.SUSPENDED, reason=reason, actor_name=f"stop rule {rule.pk}"
        )
    audit_record(
        action="model.stop_rule_tripped",
        obj=model,
        details={
            "name": model.name,
            "rule": rule.pk,
            "rule_type": rule.rule_type,
            "day": day.isoformat(),
            "figures": figures,
            "suspended": suspend,
            "status": model.status if not suspend else ModelStatus.SUSPENDED,
        },
    )
    transaction.on_commit(lambda: _notify(trip.pk))
    return trip


def _notify(trip_id: int) -> None:
    """E-mail the lead radiologists when the site has a mail server (EMAIL_HOST); the platform's alert list shows
    the trip in any case."""
    if not getattr(settings, "EMAIL_HOST", ""):
        return
    trip = StopRuleTrip.objects.select_related("model_version").get(pk=trip_id)
    leads = list(
        get_user_model()
        .objects.filter(role=Role.LEAD_RADIOLOGIST, is_active=True)
        .exclude(email="")
        .values_list("email", flat=True)
    )
    if not leads:
        return
    state = "suspended" if trip.suspended else "reported (a shadow model reaches no reader)"
    try:
        send_mail(
            subject=f"AI model {trip.model_version.name} {state.split(' ')[0]}: stop rule {trip.rule_id} tripped",
            message=f"{trip.reason}\n\nThe model is {state}. Reads go on without the AI until a lead radiologist "
            "resumes it from the model's monitoring page.",
            from_email=None,
            recipient_list=leads,
        )
    except Exception:  # noqa: BLE001  (the trip and the platform's alert stand; the mail is a courtesy)
        logger.exception("Could not e-mail the leads about stop rule trip %s", trip_id)


def open_alerts():
    """The trips a lead must see: those of a model still suspended by them, and a shadow model's of the last week."""
    recent = timezone.now() - timedelta(days=7)
    return (
        StopRuleTrip.objects.filter(resolved_at__isnull=True)
        .filter(
            Q(suspended=True, model_version__status=ModelStatus.SUSPENDED) | Q(suspended=False, created_at__gte=recent)
        )
        .select_related("model_version", "rule")
    )


@transaction.atomic
def model_resume(*, model_version: ModelVersion, user, reason: str, confirm_unvalidated: bool = False) -> ModelVersion:
    """A lead radiologist resumes a suspended model (suspended -> active through the lifecycle), with a reason; the
    model's open trips are resolved."""
    if not role_can(user, Capability.MODEL_RESUME):
        raise PermissionDenied(f"Your role does not allow this ({Capability.MODEL_RESUME}).")
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("Say why the model may run again: the reason is part of the record.")
    if model_version.status != ModelStatus.SUSPENDED:
        raise ApplicationError(f"{model_version.name} is not suspended.")
    model_version_status_change(
        model_version=model_version,
        to_status=ModelStatus.ACTIVE,
        reason=f"Resumed by a lead radiologist: {reason}",
        actor=user,
        confirm_unvalidated=confirm_unvalidated,
    )
    resolved = StopRuleTrip.objects.filter(model_version=model_version, resolved_at__isnull=True)
    trips = list(resolved.values_list("pk", flat=True))
    resolved.update(resolved_at=timezone.now(), resolved_by=user)
    audit_record(
        action="model.resumed",
        actor=user,
        obj=model_version,
        details={"name": model_version.name, "reason": reason, "trips_resolved": trips},
    )
    return model_version


def stop_rule_save(*, user, rule: StopRule, changes: dict | None = None) -> StopRule:
    """Create (rule without pk) or change a stop rule: lead radiologists and administrators (model.monitor)."""
    if not role_can(user, Capability.MODEL_MONITOR):
        raise PermissionDenied(f"Your role does not allow this ({Capability.MODEL_MONITOR}).")
    created = rule.pk is None
    for name, value in (changes or {}).items():
        setattr(rule, name, value)
    if rule.rule_type == T.FLAG_RATE and rule.low is None and rule.high is None:
        raise ApplicationError("A flag-rate rule needs a low or a high limit.")
    if rule.rule_type in (T.PSI_ABOVE, T.KS_P_BELOW) and rule.threshold is None:
        raise ApplicationError("This rule needs a threshold.")
    if bool(rule.model_version_id) == bool(rule.model_kind):
        raise ApplicationError("A stop rule is for one model or for a kind of model, not both.")
    if created:
        rule.created_by = user
    rule.save()
    audit_record(
        action="model.stop_rule_changed",
        actor=user,
        obj=rule,
        details={
            "created": created,
            "rule": rule.pk,
            "rule_type": rule.rule_type,
            "model": rule.model_version.name if rule.model_version_id else None,
            "model_kind": rule.model_kind or None,
            "low": rule.low,
            "high": rule.high,
            "consecutive_days": rule.consecutive_days,
            "threshold": rule.threshold,
            "enabled": rule.enabled,
        },
    )
    return rule
