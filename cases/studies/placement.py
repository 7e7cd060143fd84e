"""Where arriving images go with respect to appointments: linked to one by accession number, held for a person to
match, or (at a site that does not hold them) a study of their own as before appointments existed.

The rule (ADR 0006), the same for C-STORE, STOW-RS and uploads:
- the accession number is that of an appointment that takes images, and the image is of that appointment's woman
  (same patient ID): the image joins the appointment's open study, whatever its StudyInstanceUID (a modality that
  used the worklist also uses the appointment's Study Instance UID), or starts it;
- otherwise, with SCREENING_HOLD_UNMATCHED on, the image is held: stored and analysed like any other, in a study
  with the status 'held' that nobody can read until a person matches it to an appointment of the same woman
  (cases.screening.matching); held images of one DICOM study (or one exam a naming convention names) are one held
  study, found and created under the same group lock as any study;
- with it off, the image joins or starts a study attached to no appointment (the grouping of
  cases.dicom.ingest / the upload page, unchanged).
Never by name: a patient name, or a birth date, never links an image to an appointment.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.conf import settings

from cases.models import Appointment, Study
from cases.studies.grouping import StudyGroup

OPEN = (Study.Status.UPLOADED, Study.Status.PROCESSING, Study.Status.AWAITING_READS)


@dataclass(frozen=True)
class Placement:
    appointment: Appointment | None
    reason: str = ""  # why no appointment: shown on the held images page


def placement_for(*, accession_number: str, patient_id: str) -> Placement:
    """The appointment an image with this accession number and (woman's) patient ID belongs to, or why none."""
    accession = (accession_number or "").strip()
    if not accession:
        return Placement(None, "The images carry no accession number.")
    appointment = Appointment.objects.select_related("episode__patient").filter(accession_number=accession).first()
    if appointment is None:
        return Placement(None, f"Accession number {accession} matches no appointment.")
    woman = appointment.episode.patient.patient_id
    if patient_id != woman:  # an image with no patient ID is not hers either
        return Placement(
            None,
            f"Accession number {accession} is an appointment of patient {woman}, but the images are of {patient_id}.",
        )
    if appointment.status not in Appointment.TAKES_IMAGES:
        return Placement(None, f"The appointment {accession} is {appointment.get_status_display().lower()}.")
    return Placement(appointment)


def appointment_group(appointment: Appointment) -> StudyGroup:
    """Images of an appointment: its newest open study (any StudyInstanceUID) that still takes images, or a new
    one attached to it."""

    def find() -> Study | None:
        return appointment.studies.filter(status__in=OPEN).order_by("-created_at").first()

    return StudyGroup(key=f"appointment:{appointment.pk}", find=find, appointment=appointment)


def held_group(base: StudyGroup | None, *, reason: str) -> StudyGroup:
    """Held images: grouped as `base` groups them (by DICOM study or named exam), among held studies only; an upload
    without a group is a held study of its own."""
    if base is None:
        return StudyGroup(key=f"held-upload:{uuid.uuid4().hex}", find=lambda: None, held_reason=reason)
    return StudyGroup(key=f"held-{base.key}", find=base.find_held, held_reason=reason)


def hold_unmatched() -> bool:
    return bool(settings.SCREENING_HOLD_UNMATCHED)


def group_for(*, accession_number: str, patient_id: str, base: StudyGroup | None) -> StudyGroup | None:
    """The group an arriving image joins: its appointment's, a held one, or `base` (the grouping without
    appointments; None for an upload, which starts a new study)."""
    placement = placement_for(accession_number=accession_number, patient_id=patient_id)
    if placement.appointment is not None:
        return appointment_group(placement.appointment)
    if hold_unmatched():
        return held_group(base, reason=placement.reason)
    return base
