"""Held images, decided by a person (ADR 0006): attached to an appointment of the same woman, or released for
reading without one. Either way the study leaves 'held' and moves on as any study does (analysis, reading)."""

from __future__ import annotations

from django.db import transaction

from audit.services import audit_record
from cases.models import Appointment, Study
from cases.studies.services import study_status_refresh, study_transition
from cases.studies.signals import study_images_added
from core.errors import ApplicationError


def _held(study_id: int) -> Study:
    study = Study.objects.select_for_update().select_related("patient").filter(pk=study_id).first()
    if study is None or study.status != Study.Status.HELD:
        raise ApplicationError("These images are no longer held: someone has matched or released them.")
    return study


@transaction.atomic
def held_study_match(*, study_id: int, appointment_id: int, user) -> Study:
    """Attach a held study to an appointment of the same woman (same patient ID: a name is never enough). The
    study keeps its images and analyses; it becomes the appointment's, and the appointment follows its images (in
    progress; an MPPS waiting for them decides the outcome)."""
    study = _held(study_id)
    appointment = (
        Appointment.objects.select_for_update().select_related("episode__patient").filter(pk=appointment_id).first()
    )
    if appointment is None:
        raise ApplicationError("Choose one of the woman's appointments.")
    woman = appointment.episode.patient
    if woman.pk != study.patient_id:
        raise ApplicationError(
            f"The images are of patient {study.patient.patient_id}; appointment {appointment.accession_number} is of "
            f"patient {woman.patient_id}. Images are only attached to the same woman's appointment: correct the "
            "patient ID at the modality and send them again."
        )
    if appointment.status not in Appointment.TAKES_IMAGES:
        raise ApplicationError(
            f"Appointment {appointment.accession_number} is {appointment.get_status_display().lower()}: it takes no "
            "images."
        )
    held_reason, sent_accession = study.held_reason, study.accession_number
    study.episode_id, study.appointment = appointment.episode_id, appointment
    study.accession_number, study.held_reason = appointment.accession_number, ""
    study.save(update_fields=["episode", "appointment", "accession_number", "held_reason", "updated_at"])
    audit_record(
        action="images.matched",
        actor=user,
        obj=study,
        study_id=study.pk,
        details={
            "appointment": appointment.pk,
            "accession_number": appointment.accession_number,
            "accession_number_sent": sent_accession,
            "patient_id": woman.patient_id,
            "held_because": held_reason,
            "images": study.images.count(),
        },
    )
    study_transition(study=study, status=Study.Status.UPLOADED)
    study = study_status_refresh(study_id=study.pk)
    study_images_added.send(sender=Study, study=study, images=list(study.images.all()))
    return study


@transaction.atomic
def held_study_release(*, study_id: int, user, reason: str) -> Study:
    """Release a held study for reading without an appointment (images that belong to no booking: a prior from
    elsewhere, a test), with the reason."""
    if not reason.strip():
        raise ApplicationError("Say why these images are read without an appointment.")
    study = _held(study_id)
    audit_record(
        action="images.released",
        actor=user,
        obj=study,
        study_id=study.pk,
        details={"reason": reason.strip(), "held_because": study.held_reason, "patient_id": study.patient.patient_id},
    )
    study.held_reason = ""
    study.save(update_fields=["held_reason", "updated_at"])
    study_transition(study=study, status=Study.Status.UPLOADED)
    return study_status_refresh(study_id=study.pk)
