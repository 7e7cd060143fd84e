"""The modality worklist's items: scheduled and checked-in appointments, as plain values (the DICOM side,
cases.dicom.worklist, makes the data sets, matches every key and answers the C-FIND)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.utils import timezone

from cases.models import Appointment

REQUESTED_PROCEDURE = "Screening mammography, bilateral"
MODALITY = "MG"


@dataclass(frozen=True)
class WorklistFilter:
    """What the database narrows by before the DICOM matching (which checks every key again)."""

    date_from: date | None = None
    date_to: date | None = None
    patient_id: str = ""  # an exact value (no wildcard)
    accession_number: str = ""  # an exact value (no wildcard)


@dataclass(frozen=True)
class WorklistEntry:
    accession_number: str
    study_instance_uid: str
    patient_id: str
    patient_name: str  # DICOM PN (Family^Given)
    patient_birth_date: date | None
    patient_sex: str
    starts_at: datetime  # in the site's time zone
    station_ae_title: str
    site: str
    step_status: str  # ScheduledProcedureStepStatus: SCHEDULED, or ARRIVED once she is checked in
    requested_procedure_id: str
    requested_procedure_description: str = REQUESTED_PROCEDURE
    modality: str = MODALITY


def worklist_entries(query: WorklistFilter) -> list[WorklistEntry]:
    """Appointments still to be imaged (scheduled or checked in), in time order."""
    appointments = Appointment.objects.filter(status__in=Appointment.ON_WORKLIST).select_related("episode__patient")
    zone = timezone.get_current_timezone()
    if query.date_from is not None:
        appointments = appointments.filter(starts_at__gte=datetime.combine(query.date_from, time.min, tzinfo=zone))
    if query.date_to is not None:
        end = datetime.combine(query.date_to + timedelta(days=1), time.min, tzinfo=zone)
        appointments = appointments.filter(starts_at__lt=end)
    if query.patient_id:
        appointments = appointments.filter(episode__patient__patient_id=query.patient_id)
    if query.accession_number:
        appointments = appointments.filter(accession_number=query.accession_number)
    return [_entry(a) for a in appointments.order_by("starts_at", "pk")]


def _entry(appointment: Appointment) -> WorklistEntry:
    patient = appointment.episode.patient
    return WorklistEntry(
        accession_number=appointment.accession_number,
        study_instance_uid=appointment.study_instance_uid,
        patient_id=patient.patient_id,
        patient_name=patient.name,
        patient_birth_date=patient.birth_date,
        patient_sex=patient.sex or "F",
        starts_at=timezone.localtime(appointment.starts_at),
        station_ae_title=appointment.station_ae_title,
        site=appointment.site,
        step_status="ARRIVED" if appointment.status == Appointment.Status.CHECKED_IN else "SCHEDULED",
        requested_procedure_id=appointment.accession_number,
    )
