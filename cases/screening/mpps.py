"""The modality's Performed Procedure Steps (MPPS) and what they do to the appointment (ADR 0007).

- N-CREATE "IN PROGRESS": the step is recorded, linked to the appointment of its accession number, and the
  appointment becomes in progress.
- N-SET "COMPLETED": the appointment becomes screened when its images cover every expected view (four, none of a
  breast removed, implant-displaced views where she has implants: cases.screening.records.expected_views), else
  partially screened with the views missing as the reason. The images that count are those linked to the
  appointment; when the step references images that have not arrived yet, the decision waits for them
  (appointment_outcome_settle runs again as each image arrives: cases.screening.receivers).
- N-SET "DISCONTINUED": partially screened when any image was taken, else attended not screened, with the
  modality's reason.
An appointment that already has its outcome (a person recorded it) keeps it; the step records what it would have
been. Every step message is audited (`mpps.received`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.db import transaction

from audit.services import audit_record
from cases.models import Appointment, Image, PerformedProcedureStep
from cases.screening.appointments import appointment_transition
from cases.screening.records import expected_views, view_key, view_label

logger = logging.getLogger(__name__)
Status = Appointment.Status
Step = PerformedProcedureStep.Status


@dataclass(frozen=True)
class StepMessage:
    """One N-CREATE or N-SET, as the DICOM handler (cases.dicom.mpps) read it."""

    sop_instance_uid: str
    status: str = ""  # IN PROGRESS | COMPLETED | DISCONTINUED; "" for an N-SET that changes other attributes
    accession_numbers: tuple[str, ...] = ()
    station_ae_title: str = ""
    peer_address: str = ""
    referenced_sop_instance_uids: tuple[str, ...] = ()
    discontinuation_reason: str = ""
    attributes: dict = field(default_factory=dict)


@dataclass(frozen=True)
class StepOutcome:
    result: str  # created | updated | duplicate | unknown | final
    detail: str = ""
    appointment_id: int | None = None


def mpps_create(message: StepMessage) -> StepOutcome:
    """N-CREATE: a step begins (IN PROGRESS)."""
    with transaction.atomic():
        if PerformedProcedureStep.objects.filter(sop_instance_uid=message.sop_instance_uid).exists():
            return StepOutcome("duplicate", "This Performed Procedure Step already exists.")
        appointment = (
            Appointment.objects.filter(accession_number__in=[a for a in message.accession_numbers if a]).first()
            if message.accession_numbers
            else None
        )
        step = PerformedProcedureStep.objects.create(
            sop_instance_uid=message.sop_instance_uid,
            appointment=appointment,
            accession_number=", ".join(a for a in message.accession_numbers if a)[:64],
            status=Step.IN_PROGRESS,
            station_ae_title=message.station_ae_title[:16],
            peer_address=message.peer_address[:64],
            referenced_sop_instance_uids=list(message.referenced_sop_instance_uids),
            attributes=message.attributes,
        )
        note = ""
        if appointment is None:
            note = "no appointment has this accession number (an unscheduled step)"
        elif Status.IN_PROGRESS in Appointment.ALLOWED[appointment.status]:
            appointment_transition(
                appointment_id=appointment.pk, to=Status.IN_PROGRESS, source="mpps",
                source_detail=_detail(message), reason="The modality started the procedure step",
            )  # fmt: skip
        elif appointment.status != Status.IN_PROGRESS:
            note = f"the appointment is {appointment.get_status_display().lower()}: left as it is"
        _audit(step, message, note)
    if note:
        logger.warning("MPPS %s from %s: %s", message.sop_instance_uid, message.station_ae_title, note)
    return StepOutcome("created", note, appointment.pk if appointment else None)


def mpps_update(message: StepMessage) -> StepOutcome:
    """N-SET: attributes change, and COMPLETED or DISCONTINUED ends the step (after which it may not change)."""
    with transaction.atomic():
        found = PerformedProcedureStep.objects.filter(sop_instance_uid=message.sop_instance_uid).first()
        if found is None:
            return StepOutcome("unknown", "No such Performed Procedure Step.")
        # The appointment's lock first, then the step's: the order in which arriving images take them too.
        if found.appointment_id is not None:
            Appointment.objects.select_for_update().filter(pk=found.appointment_id).first()
        step = PerformedProcedureStep.objects.select_for_update().get(pk=found.pk)
        if step.status != Step.IN_PROGRESS:
            return StepOutcome("final", "Performed Procedure Step Object may no longer be updated")
        if message.referenced_sop_instance_uids:
            step.referenced_sop_instance_uids = list(message.referenced_sop_instance_uids)
        step.attributes = {**step.attributes, **message.attributes}
        if message.status in (Step.COMPLETED, Step.DISCONTINUED):
            step.status = message.status
            step.discontinuation_reason = message.discontinuation_reason[:200]
            step.outcome_pending = step.appointment_id is not None
        step.save()
        _audit(step, message, "")
        if step.outcome_pending:
            appointment_outcome_settle(appointment_id=step.appointment_id)
    return StepOutcome("updated", "", step.appointment_id)


def appointment_outcome_settle(*, appointment_id: int) -> None:
    """Decide the appointment's outcome from its ended steps and the images linked to it, where a step waits for
    that. Called in the transaction of an N-SET and of every image linked to the appointment; the appointment's
    lock makes the two see each other's images and steps (whichever comes second decides)."""
    appointment = Appointment.objects.select_for_update().get(pk=appointment_id)
    steps = list(appointment.performed_steps.filter(outcome_pending=True).order_by("created_at"))
    if not steps:
        return
    step = steps[-1]
    images = list(Image.objects.filter(study__appointment=appointment).values_list("sop_instance_uid", "laterality",
                                                                                    "view"))  # fmt: skip
    stored = {uid for uid, _, _ in images}
    waiting = [uid for uid in step.referenced_sop_instance_uids if uid not in stored]
    record = getattr(appointment, "record", None)
    expected = expected_views(record)
    views = {(side, view) for _, side, view in images}
    if step.status == Step.DISCONTINUED:
        reason = step.discontinuation_reason or "Discontinued at the modality (no reason given)"
        taken = bool(images or step.referenced_sop_instance_uids)
        outcome = Status.PARTIALLY_SCREENED if taken else Status.ATTENDED_NOT_SCREENED
    else:
        complete = expected.pairs <= views and len(images) >= expected.image_count
        if not complete and waiting:
            step.outcome_note = f"Waiting for {len(waiting)} of the {len(step.referenced_sop_instance_uids)} images"
            step.save(update_fields=["outcome_note", "updated_at"])
            return
        outcome = Status.SCREENED if complete else Status.PARTIALLY_SCREENED
        reason = "" if complete else _missing(expected, views, len(images))
    for done in steps:
        done.outcome_pending = False
        done.outcome_note = f"{outcome.label}{': ' + reason if reason else ''}"[:200]
        done.save(update_fields=["outcome_pending", "outcome_note", "updated_at"])
    if outcome in Appointment.ALLOWED[appointment.status]:
        appointment_transition(
            appointment_id=appointment.pk, to=outcome, source="mpps", reason=reason,
            source_detail=f"MPPS {step.sop_instance_uid} from {step.station_ae_title or 'the modality'}",
        )  # fmt: skip
    elif appointment.status != outcome:
        logger.warning(
            "MPPS %s would make appointment %s %s; it is %s (left as it is)",
            step.sop_instance_uid, appointment.accession_number, outcome, appointment.status,
        )  # fmt: skip


def _missing(expected, views: set, count: int) -> str:
    missing = sorted(expected.pairs - views, key=lambda pair: (pair[1], pair[0] != "R"))
    if missing:
        return "Views missing: " + ", ".join(view_label(view_key(side, view)) for side, view in missing)
    return f"{count} of the {expected.image_count} images expected ({expected.note})"


def _detail(message: StepMessage) -> str:
    return f"MPPS {message.sop_instance_uid} from {message.station_ae_title or 'the modality'}"


def _audit(step: PerformedProcedureStep, message: StepMessage, note: str) -> None:
    audit_record(
        action="mpps.received",
        obj=step,
        object_type="performed_procedure_step",
        details={
            "sop_instance_uid": step.sop_instance_uid,
            "status": message.status,
            "accession_numbers": list(message.accession_numbers),
            "appointment": step.appointment_id,
            "station_ae_title": message.station_ae_title,
            "referenced_images": len(message.referenced_sop_instance_uids),
            "discontinuation_reason": message.discontinuation_reason,
            "note": note,
        },
        ip_address=message.peer_address or None,
    )
