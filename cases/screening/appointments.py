"""Appointments: booking one, and the one function that changes an appointment's status.

appointment_transition() is the only writer of Appointment.status: it locks the row, follows the state machine
(Appointment.ALLOWED), asks for a reason where the status needs one, writes one immutable AppointmentStatusChange
(who or what, when, from, to, why) and the audit row, in one transaction. Pages, the API, the MPPS service and
arriving images all call it; the helpers below (check-in, outcome, cancel) only say which move they make.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from pydicom.uid import generate_uid

from audit.services import audit_record
from cases.models import Appointment, AppointmentStatusChange, Patient, ScreeningEpisode
from core.errors import ApplicationError

Status = Appointment.Status
Source = AppointmentStatusChange.Source

# What a person may record as the appointment's outcome (the page's and API's choices).
OUTCOMES = (Status.SCREENED, Status.PARTIALLY_SCREENED, Status.ATTENDED_NOT_SCREENED, Status.DID_NOT_ATTEND)


@dataclass(frozen=True)
class WomanDetails:
    patient_id: str
    family_name: str
    given_name: str
    birth_date: date | None


def person_name(family_name: str, given_name: str) -> str:
    """The woman's name as DICOM writes it (PN: Family^Given), which the worklist gives the modality."""
    family, given = family_name.strip().replace("^", " "), given_name.strip().replace("^", " ")
    return f"{family}^{given}" if given else family


def _woman(details: WomanDetails) -> Patient:
    """The woman's row, created when new. An existing woman whose recorded name or birth date differs from what
    was typed is refused: the patient ID may be mistyped, and a booking is never put on another woman."""
    patient_id = details.patient_id.strip()
    if not patient_id:
        raise ApplicationError("Enter the woman's patient ID (NHS number).")
    name = person_name(details.family_name, details.given_name)
    patient = Patient.objects.select_for_update().filter(patient_id=patient_id).first()
    if patient is None:
        return Patient.objects.create(patient_id=patient_id, name=name, birth_date=details.birth_date, sex="F")
    differs = []
    if patient.name and name and patient.name.casefold() != name.casefold():
        differs.append(f"name {patient.name}")
    if patient.birth_date and details.birth_date and patient.birth_date != details.birth_date:
        differs.append(f"date of birth {patient.birth_date:%Y-%m-%d}")
    if differs:
        raise ApplicationError(
            f"Patient {patient_id} is already recorded with {' and '.join(differs)}: check the patient ID, "
            "or correct the woman's details first."
        )
    changed = [field for field, value in (("name", name), ("birth_date", details.birth_date)) if value]
    changed = [field for field in changed if not getattr(patient, field)]
    for field in changed:
        setattr(patient, field, name if field == "name" else details.birth_date)
    if changed:
        patient.save(update_fields=changed)
    return patient


@transaction.atomic
def appointment_schedule(
    *, woman: WomanDetails, starts_at: datetime, site: str, station_ae_title: str = "", user
) -> Appointment:
    """Book a woman's appointment. It joins her episode when her last appointment there was cancelled or missed
    (she is rebooked, not screened twice); otherwise a new episode begins. Refused while she has an appointment
    that is still to come or under way."""
    if timezone.is_naive(starts_at):
        raise ApplicationError("The appointment's time needs its time zone.")
    site, station = site.strip(), station_ae_title.strip().upper()
    if not site:
        raise ApplicationError("Enter the site (clinic or mobile unit).")
    if len(station) > 16 or "\\" in station:
        raise ApplicationError("The station AE title is at most 16 characters, without a backslash.")
    patient = _woman(woman)
    active = Appointment.objects.filter(episode__patient=patient, status__in=Appointment.ACTIVE).first()
    if active is not None:
        raise ApplicationError(
            f"{patient.patient_id} already has an appointment ({active.accession_number}, "
            f"{timezone.localtime(active.starts_at):%Y-%m-%d %H:%M}, {active.get_status_display().lower()}): "
            "cancel it or record its outcome first."
        )
    last = Appointment.objects.filter(episode__patient=patient).select_related("episode").order_by("-pk").first()
    rebooking = last is not None and last.status in (Status.CANCELLED, Status.DID_NOT_ATTEND)
    episode = last.episode if rebooking else ScreeningEpisode.objects.create(patient=patient, created_by=user)
    appointment = Appointment.objects.create(
        episode=episode,
        starts_at=starts_at,
        site=site[:64],
        station_ae_title=station,
        # Unique and at most 16 characters until the row has its number, which names it just below.
        accession_number=f"new-{uuid.uuid4().hex[:12]}",
        study_instance_uid=generate_uid(),
        created_by=user,
    )
    appointment.accession_number = accession_number_for(appointment.pk)
    try:
        with transaction.atomic():
            appointment.save(update_fields=["accession_number"])
    except IntegrityError:
        raise ApplicationError("The accession number is taken: check SCREENING_ACCESSION_PREFIX.")
    AppointmentStatusChange.objects.create(
        appointment=appointment, from_status="", to_status=Status.SCHEDULED, changed_by=user, reason="Booked"
    )
    audit_record(
        action="appointment.scheduled",
        actor=user,
        obj=appointment,
        details={
            "patient_id": patient.patient_id,
            "episode": episode.pk,
            "rebooked": rebooking,
            "accession_number": appointment.accession_number,
            "starts_at": starts_at.isoformat(),
            "site": appointment.site,
            "station_ae_title": station,
        },
    )
    return appointment


def accession_number_for(pk: int) -> str:
    """The site's prefix and the appointment's number: 'MA00000042'. DICOM's SH allows 16 characters."""
    number = f"{settings.SCREENING_ACCESSION_PREFIX}{pk:08d}"
    if len(number) > 16 or "\\" in number:
        raise ApplicationError("SCREENING_ACCESSION_PREFIX is too long: an accession number has 16 characters.")
    return number


def appointment_transition(
    *,
    appointment_id: int,
    to: str,
    user=None,
    source: str = Source.PERSON,
    source_detail: str = "",
    reason: str = "",
) -> Appointment:
    """The one place an appointment's status changes: state machine, immutable row, audit. Moving to the status it
    already has changes nothing (an MPPS sent twice, two people pressing the same button)."""
    with transaction.atomic():
        appointment = Appointment.objects.select_for_update().get(pk=appointment_id)
        if to == appointment.status:
            return appointment
        if to not in Appointment.ALLOWED.get(appointment.status, set()):
            raise ApplicationError(
                f"Appointment {appointment.accession_number} is {appointment.get_status_display().lower()}: it "
                f"cannot become {Status(to).label.lower()}."
            )
        reason = reason.strip()
        if to in Appointment.NEEDS_REASON and not reason:
            raise ApplicationError(f"Say why the appointment is {Status(to).label.lower()}.")
        if source == Source.PERSON and user is None:
            raise ValueError("A person's change names the person.")
        previous = appointment.status
        appointment.status = to
        appointment.save(update_fields=["status", "updated_at"])
        change = AppointmentStatusChange.objects.create(
            appointment=appointment,
            from_status=previous,
            to_status=to,
            changed_by=user,
            source=source,
            source_detail=source_detail[:200],
            reason=reason,
        )
        audit_record(
            action="appointment.status_changed",
            actor=user,
            obj=appointment,
            details={
                "from": previous,
                "to": to,
                "source": source,
                "source_detail": source_detail,
                "reason": reason,
                "change": change.pk,
                "accession_number": appointment.accession_number,
            },
        )
    return appointment


@transaction.atomic
def appointment_check_in(*, appointment_id: int, user, identity_confirmed: bool) -> Appointment:
    """She has arrived and the mammographer has confirmed who she is (name, date of birth, address)."""
    if not identity_confirmed:
        raise ApplicationError("Confirm the woman's identity (name, date of birth and address) to check her in.")
    appointment = appointment_transition(appointment_id=appointment_id, to=Status.CHECKED_IN, user=user,
                                         reason="Identity confirmed")  # fmt: skip
    appointment.identity_confirmed_at, appointment.identity_confirmed_by = timezone.now(), user
    appointment.save(update_fields=["identity_confirmed_at", "identity_confirmed_by", "updated_at"])
    return appointment


def appointment_outcome_record(*, appointment_id: int, user, outcome: str, reason: str = "") -> Appointment:
    """The mammographer records how the appointment ended (where the modality sent no MPPS, or to correct one
    still in progress)."""
    if outcome not in OUTCOMES:
        raise ApplicationError("Choose how the appointment ended.")
    return appointment_transition(appointment_id=appointment_id, to=outcome, user=user, reason=reason)


def appointment_cancel(*, appointment_id: int, user, reason: str) -> Appointment:
    return appointment_transition(appointment_id=appointment_id, to=Status.CANCELLED, user=user, reason=reason)
