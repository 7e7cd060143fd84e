"""A model's lifecycle: imported, shadow, accepted, active, suspended, retired (ModelStatus).

Every status change goes through model_version_status_change(): it checks the transition, keeps `is_active` equal to
status == active (one active model per kind), writes an immutable ModelStatusChange row (who, when, from, to, why)
and the audit row, in one transaction. Activation, suspension and retirement are status changes like the others.

    imported  -> shadow, accepted, retired
    shadow    -> accepted, retired, imported
    accepted  -> active, shadow, retired
    active    -> suspended, retired, accepted (accepted: another model of its kind was made active)
    suspended -> active (only by a lead radiologist: model.resume), retired
    retired   -> (nothing: kept for the record)

Only an accepted (or suspended) model becomes active. A model that is not validated (its card's sealed-test
figures: ModelVersion.validation) is activated only with `confirm_unvalidated`, as before.

A model becomes accepted (from imported or shadow) in one of two ways only, and its status-change row says which:
- at this site: a lead signs off a passing local acceptance report (inference.acceptance.acceptance_report_sign_off),
  which calls this with `acceptance_report`; the row references the report (docs/adr/0009);
- for research use, without a local acceptance test: `for_research=True`, the shipped research models
  (model_version_accept_for_research) or an administrator who ticks "for research use"; the reason then starts with
  "Accepted for research use" (docs/adr/0005-bring-your-own-model.md argues why).
An active model moving back to accepted (another was made active) needs neither.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from accounts.roles import Capability, role_can
from audit.services import audit_record
from core.errors import ApplicationError
from inference.models import InferenceJob, ModelKind, ModelStatus, ModelStatusChange, ModelVersion, Prediction

S = ModelStatus
TRANSITIONS: dict[str, frozenset[str]] = {
    S.IMPORTED: frozenset({S.SHADOW, S.ACCEPTED, S.RETIRED}),
    S.SHADOW: frozenset({S.ACCEPTED, S.RETIRED, S.IMPORTED}),
    S.ACCEPTED: frozenset({S.ACTIVE, S.SHADOW, S.RETIRED}),
    S.ACTIVE: frozenset({S.SUSPENDED, S.RETIRED, S.ACCEPTED}),
    S.SUSPENDED: frozenset({S.ACTIVE, S.RETIRED}),
    S.RETIRED: frozenset(),
}


def allowed_transitions(status: str) -> list[str]:
    """The statuses a model in `status` may go to, in the order ModelStatus lists them."""
    return [value for value in S.values if value in TRANSITIONS.get(status, frozenset())]


def _who(actor, actor_name: str) -> str:
    if actor is not None:
        return actor.get_username()
    if not actor_name:
        raise ApplicationError("A status change needs the person or the command that makes it.")
    return actor_name


@transaction.atomic
def model_version_status_change(
    *,
    model_version: ModelVersion,
    to_status: str,
    reason: str,
    actor=None,
    actor_name: str = "",
    confirm_unvalidated: bool = False,
    acceptance_report=None,
    for_research: bool = False,
) -> ModelStatusChange:
    """Change a model's status: the one place it happens. `actor`: the person (a User), or None with `actor_name`
    naming the command. `reason` is required. Activating a model first moves the active model of the same kind (if
    any) back to accepted, with its own row; activating a malignancy model queues the images waiting for one."""
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("Say why the status changes: the reason is part of the record.")
    who = _who(actor, actor_name)
    version = ModelVersion.objects.select_for_update().get(pk=model_version.pk)
    previous = version.status
    if to_status not in S.values:
        raise ApplicationError(f"{to_status!r} is not a model status.")
    if previous == S.SUSPENDED and to_status == S.ACTIVE and not role_can(actor, Capability.MODEL_RESUME):
        raise ApplicationError(
            f"{version.name} is suspended: only a lead radiologist may resume it ({Capability.MODEL_RESUME}), "
            "from its monitoring page, with the reason."
        )
    if to_status not in TRANSITIONS[previous]:
        allowed = ", ".join(allowed_transitions(previous)) or "none: a retired model stays retired"
        raise ApplicationError(
            f"{version.name} is {version.get_status_display().lower()}; it cannot become {to_status} "
            f"(allowed: {allowed})."
        )
    details: dict = {
        "name": version.name,
        "kind": version.kind,
        "file_sha256": version.file_sha256,
        "from": previous,
        "to": to_status,
        "reason": reason,
    }
    if to_status == S.ACCEPTED and previous in (S.IMPORTED, S.SHADOW):
        reason = _acceptance_evidence(
            version, acceptance_report=acceptance_report, for_research=for_research, reason=reason
        )
        details["reason"] = reason
        if acceptance_report is not None:
            details["acceptance_report_id"] = acceptance_report.pk
        else:
            details["for_research"] = True
    elif acceptance_report is not None:
        raise ApplicationError("An acceptance report only accepts a model (imported or shadow -> accepted).")
    if to_status == S.ACTIVE:
        validation = version.validation
        if not validation.validated and not confirm_unvalidated:
            raise ApplicationError(
                f"{version.name} is not validated ({validation.short}). Confirm that you want to activate it: its "
                "results will be shown as research outputs, not as findings."
            )
        details.update(validated=validation.validated, validation=validation.statement)
        if not validation.validated:
            details["unvalidated_confirmed_by"] = who
        current = ModelVersion.objects.select_for_update().filter(kind=version.kind, is_active=True).first()
        if current is not None:
            model_version_status_change(
                model_version=current,
                to_status=S.ACCEPTED,
                reason=f"Replaced by {version.name} as the active {version.get_kind_display().lower()} model.",
                actor=actor,
                actor_name=actor_name,
            )
            details["replaced"] = current.name
    now = timezone.now()
    version.status = to_status
    version.status_changed_at = now
    fields = ["status", "status_changed_at", "is_active"]
    version.is_active = to_status == S.ACTIVE
    if to_status == S.ACTIVE:
        version.activated_at = now
        fields.append("activated_at")
    version.save(update_fields=fields)
    change = ModelStatusChange.objects.create(
        model_version=version,
        from_status=previous,
        to_status=to_status,
        changed_by=actor,
        changed_by_name=who,
        reason=reason,
        acceptance_report=acceptance_report if to_status == S.ACCEPTED else None,
    )
    audit_record(action="model.status_changed", actor=actor, obj=version, details={**details, "by": who})
    # The caller's instance follows the row.
    model_version.status, model_version.is_active = version.status, version.is_active
    model_version.status_changed_at, model_version.activated_at = version.status_changed_at, version.activated_at
    if to_status == S.ACTIVE and version.kind == ModelKind.MALIGNANCY:
        _queue_waiting_jobs(version)
    return change


def model_status_record_created(*, model_version: ModelVersion, actor=None, actor_name: str, reason: str) -> None:
    """The first row of a model's history: it was imported (or registered). Called by the import and register
    services in their transaction."""
    ModelStatusChange.objects.create(
        model_version=model_version,
        from_status="",
        to_status=model_version.status,
        changed_by=actor,
        changed_by_name=_who(actor, actor_name),
        reason=reason,
    )
    ModelVersion.objects.filter(pk=model_version.pk).update(status_changed_at=timezone.now())


def model_version_activate(
    *,
    model_version: ModelVersion,
    confirm_unvalidated: bool = False,
    confirmed_by: str = "",
    actor=None,
    reason: str = "",
) -> ModelVersion:
    """Make an accepted (or suspended) model the active one of its kind. `confirmed_by`: the command or person that
    confirmed a model that is not validated (recorded as who made the change when there is no `actor`)."""
    if model_version.status not in (S.ACCEPTED, S.SUSPENDED):
        raise ApplicationError(
            f"{model_version.name} is {model_version.get_status_display().lower()}: only an accepted model can be "
            "made active. Accept it first."
        )
    model_version_status_change(
        model_version=model_version,
        to_status=S.ACTIVE,
        reason=reason or f"Made the active {model_version.get_kind_display().lower()} model.",
        actor=actor,
        actor_name=confirmed_by or "the administrator",
        confirm_unvalidated=confirm_unvalidated,
    )
    return model_version


def model_version_accept_for_research(*, model_version: ModelVersion, accepted_by: str, actor=None) -> None:
    """imported (or shadow) -> accepted, for a model the platform ships or a developer registers to try the
    platform: not a local acceptance test, and the record says so ('accepted for research use by <who>', with the
    model's own validation statement)."""
    if model_version.status == S.ACCEPTED:
        return
    model_version_status_change(
        model_version=model_version,
        to_status=S.ACCEPTED,
        reason=f"Accepted for research use by {accepted_by}, without a local acceptance test. "
        f"{model_version.validation.statement}",
        actor=actor,
        actor_name=accepted_by,
        for_research=True,
    )


RESEARCH_PREFIX = "Accepted for research use"


def _acceptance_evidence(version: ModelVersion, *, acceptance_report, for_research: bool, reason: str) -> str:
    """What an acceptance rests on: a signed-off passing local acceptance report of this model, or an explicit
    "for research use" (then said in the reason). Returns the reason to record."""
    if acceptance_report is not None:
        if acceptance_report.model_version_id != version.pk:
            raise ApplicationError("That acceptance report is of another model.")
        if acceptance_report.result != "pass" or acceptance_report.signed_off_at is None:
            raise ApplicationError("Only a passing acceptance report signed off by a lead accepts a model.")
        return reason
    if for_research:
        return (
            reason
            if reason.startswith(RESEARCH_PREFIX)
            else f"{RESEARCH_PREFIX}, without a local acceptance test: {reason}"
        )
    raise ApplicationError(
        f"{version.name} is accepted at this site only when a lead signs off a passing local acceptance report "
        f"(/models/{version.pk}/acceptance/), or for research use, said as such."
    )


def _queue_waiting_jobs(version: ModelVersion) -> None:
    from inference.serving.jobs import Status, inference_job_send, inference_job_transition
    from inference.serving.signals import job_status_changed

    waiting = InferenceJob.objects.select_for_update().filter(status=Status.WAITING_FOR_MODEL)
    for job in waiting:
        existing = InferenceJob.all_objects.filter(image_id=job.image_id, model_version=version).first()
        if existing is not None:
            job.delete()
            if existing.shadow:
                # Analysed by this model while it was in shadow and no model was active: that analysis is now the
                # active model's, the image's only one; it becomes visible like any other (the study follows).
                existing.shadow = False
                existing.save(update_fields=["shadow"])
                prediction = Prediction.all_objects.filter(job=existing).first()
                if prediction is not None:
                    prediction.shadow = False
                    prediction.save(update_fields=["shadow"])
                job_status_changed.send(sender=InferenceJob, job=existing, previous=existing.status)
            continue
        job.model_version = version
        job.save(update_fields=["model_version"])
        inference_job_transition(job=job, status=Status.QUEUED)
        inference_job_send(job)


def active_model(kind: str = ModelKind.MALIGNANCY) -> ModelVersion | None:
    """The active model of a kind, or None."""
    return ModelVersion.objects.filter(kind=kind, is_active=True).first()
