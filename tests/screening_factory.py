"""Appointments and a modality's images for the screening tests."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.utils import timezone

from tests.dicom_factory import make_dicom, patch_dicom

FOUR_VIEWS = (("R", "CC"), ("L", "CC"), ("R", "MLO"), ("L", "MLO"))


def at(hour: int, minute: int = 0, *, days: int = 0) -> datetime:
    """Today (plus `days`) at hour:minute, in the site's time zone."""
    day = timezone.localdate() + timedelta(days=days)
    return timezone.make_aware(datetime.combine(day, time(hour, minute)))


def book(user, *, patient_id: str = "9434765919", family_name: str = "Jones", given_name: str = "Ada",
         birth_date: date = date(1968, 4, 2), starts_at: datetime | None = None, site: str = "Leeds mobile 1",
         station_ae_title: str = "MG_ROOM_1"):  # fmt: skip
    from cases.screening.appointments import WomanDetails, appointment_schedule

    return appointment_schedule(
        woman=WomanDetails(patient_id=patient_id, family_name=family_name, given_name=given_name,
                           birth_date=birth_date),
        starts_at=starts_at or at(9, 30), site=site, station_ae_title=station_ae_title, user=user,
    )  # fmt: skip


def mammogram(*, accession: str, patient_id: str = "9434765919", side: str = "R", view: str = "CC",
              study_uid: str | None = None, sop_uid: str | None = None) -> bytes:  # fmt: skip
    data = make_dicom(laterality=side, view=view, patient_id=patient_id, study_uid=study_uid, sop_uid=sop_uid)
    # As a modality that took her details from the worklist writes them.
    return patch_dicom(data, AccessionNumber=accession, PatientName="Jones^Ada", PatientBirthDate="19680402")
