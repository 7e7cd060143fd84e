"""Received DICOM instances (C-STORE, STOW-RS) go through the same ingestion as web uploads: study_upload().

What is DICOM-specific is only which study an instance joins:
- by accession number, its appointment's study (cases.studies.placement); at a site that holds unmatched images,
  an instance whose accession matches no appointment joins a held study (grouped as below, among held studies);
- by StudyInstanceUID: the platform study created from the same DICOM study (and the same woman), while images may
  still be added to it (before its first read); otherwise a new study;
- a PatientID that names the view under a dataset's naming convention (imaging.naming_conventions: CBIS-DDSM gives
  every view its own StudyInstanceUID and names it 'Mass-Test_P_00173_RIGHT_CC') is grouped by the exam it names
  ('Mass-Test_P_00173'), so her four views become one study, as a web upload of the four files would.
The study is found (or created) under the group's lock in the transaction that adds the image
(cases.studies.grouping), so views of one study received at once by the listener and web workers make one study.

Received files are recorded in the name of a service account (DICOM_INGEST_USERNAME) that cannot sign in.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import connection
from pydicom import dcmread

from accounts.models import User
from accounts.roles import Role
from audit.services import audit_record
from cases.dicom.received import AssociationSummary, IngestOutcome, ReceivedInstance
from cases.models import Study
from cases.studies.grouping import StudyGroup
from cases.studies.ingestion import IncomingFile, study_images_addable, study_upload
from cases.studies.placement import group_for
from core.errors import ApplicationError
from imaging.dicom_tags import text, woman_id
from imaging.naming_conventions import NamedView, view_named_by

logger = logging.getLogger(__name__)

_OPEN = (Study.Status.UPLOADED, Study.Status.PROCESSING, Study.Status.AWAITING_READS)
_HELD = (Study.Status.HELD,)


def dicom_service_user() -> User:
    """The account received instances are recorded under: exists once, has no usable password."""
    username = settings.DICOM_INGEST_USERNAME
    user, _ = User.objects.get_or_create(
        username=username,
        defaults={
            "role": Role.TECHNOLOGIST,
            "first_name": "DICOM",
            "last_name": "receiver",
            "password": make_password(None),
        },
    )
    return user


def dicom_association_record(summary: AssociationSummary) -> None:
    """The audit row of one association (or of a spool recovery): who, from where, what was stored or refused."""
    try:
        audit_record(
            action="dicom.association",
            object_type="dicom_association",
            object_id=summary.association_id,
            details=summary.as_json(),
            ip_address=summary.address or None,
        )
    finally:
        connection.close()  # this thread's connection: association threads end, their connections must too


def dicom_instance_ingest(instance: ReceivedInstance) -> IngestOutcome:
    """One instance received by the listener, recorded in the name of the DICOM service account. Its spool file is
    handed over as it is (never read back into memory or copied; the listener removes it once this has decided)."""
    incoming = IncomingFile.borrowed_file("received.dcm", instance.spooled_path)
    return dicom_file_ingest(incoming=incoming, sop_instance_uid=instance.sop_instance_uid, user=dicom_service_user())


def dicom_file_ingest(*, incoming: IncomingFile, sop_instance_uid: str, user) -> IngestOutcome:
    """One DICOM instance, a file on this host's disk (the listener's spool file, a STOW-RS part), through
    study_upload(); its decision for the C-STORE or STOW-RS status. The file must be `borrowed`: it is still needed
    when the study it was to join is claimed meanwhile and it is ingested again into a new one; its owner removes
    it."""
    if not incoming.borrowed:
        raise ValueError("dicom_file_ingest takes a borrowed file: its owner removes it")
    header = dcmread(incoming.path, stop_before_pixels=True, force=True)
    patient_id = text(header, "PatientID")
    incoming = replace(incoming, name=f"{patient_id or 'dicom'}-{sop_instance_uid}.dcm"[-255:])
    result = study_upload(user=user, files=[incoming], group=_group_of(header))
    outcome = result.outcomes[0]
    study_id = result.study.pk if result.study is not None else None
    if outcome.status == "rejected":
        return IngestOutcome(status="rejected", code=outcome.code, reason=outcome.reason)
    if outcome.status == "duplicate":
        return IngestOutcome(status="duplicate", reason=outcome.reason, image_id=outcome.image_id)
    coerced = ""
    if woman_id(patient_id) != patient_id:
        coerced = f"PatientID recorded as {woman_id(patient_id)}"
    return IngestOutcome(status="stored", coerced=coerced, image_id=outcome.image_id, study_id=study_id)


def _group_of(header) -> StudyGroup:
    """The instance's group: its appointment's, by accession number (cases.studies.placement: or held, at a site
    that holds unmatched images); else the exam its PatientID names under a dataset's naming convention, else its
    DICOM study."""
    woman = woman_id(text(header, "PatientID"))
    named = view_named_by(text(header, "PatientID"))
    if named is not None:
        base = StudyGroup(
            key=f"exam:{named.exam_key}",
            find=lambda: _open_study_of_exam(woman, named, _OPEN),
            find_held=lambda: _open_study_of_exam(woman, named, _HELD),
        )
    else:
        uid = text(header, "StudyInstanceUID")
        base = StudyGroup(
            key=f"study:{uid}",
            find=lambda: _open_study_of_dicom_study(woman, uid, _OPEN),
            find_held=lambda: _open_study_of_dicom_study(woman, uid, _HELD),
        )
    return group_for(accession_number=text(header, "AccessionNumber"), patient_id=woman, base=base)


def _open_study_of_dicom_study(woman: str, uid: str, statuses) -> Study | None:
    if not uid:
        return None
    return _first_open(_open_studies(woman, statuses).filter(study_instance_uid=uid))


def _open_study_of_exam(woman: str, named: NamedView, statuses) -> Study | None:
    # Received files are named after their PatientID (dicom_file_ingest), which starts with the exam.
    found = _open_studies(woman, statuses).filter(images__original_filename__istartswith=f"{named.exam}_")
    return _first_open(found)


def _open_studies(woman: str, statuses):
    # Only studies of no appointment: an appointment's images are grouped by their appointment (group_for).
    return Study.objects.filter(patient__patient_id=woman, status__in=statuses, appointment__isnull=True).order_by(
        "-created_at"
    )


def _first_open(candidates) -> Study | None:
    """The newest candidate images may still be added to (before its first read)."""
    for study in candidates.distinct()[:3]:
        try:
            study_images_addable(study)
        except ApplicationError:
            continue
        return study
    return None
