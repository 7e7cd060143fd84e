"""Received DICOM instances (C-STORE, STOW-RS) go through the same ingestion as web uploads: study_upload().

What is DICOM-specific is only which study an instance joins:
- by StudyInstanceUID: the platform study created from the same DICOM study (and the same woman), while images may
  still be added to it (before its first read); otherwise a new study;
- CBIS-DDSM-style files give every view its own StudyInstanceUID and name the view in the PatientID
  ('Mass-Test_P_00173_RIGHT_CC'): they are grouped by the woman and the exam the identifier names
  ('Mass-Test_P_00173'), so her four views become one study, as a web upload of the four files would.

Received files are recorded in the name of a service account (DICOM_INGEST_USERNAME) that cannot sign in.
"""

from __future__ import annotations

import logging
import re
import threading
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
from cases.studies.ingestion import IncomingFile, study_images_addable, study_upload
from imaging.dicom_tags import text, woman_id
from mammo_platform.errors import ApplicationError

logger = logging.getLogger(__name__)

_CBIS_EXAM = re.compile(r"^((?:Mass|Calc)-(?:Training|Test)_P_\d+)_(?:LEFT|RIGHT)_(?:CC|MLO)", re.IGNORECASE)
_OPEN = (Study.Status.UPLOADED, Study.Status.PROCESSING, Study.Status.AWAITING_READS)
# One study per DICOM study (or CBIS exam) even when its instances arrive on parallel associations: the lookup and
# the creation of the study are serialised per grouping key in this process.
_group_locks: dict[str, threading.Lock] = {}
_group_locks_guard = threading.Lock()


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
    exam = _CBIS_EXAM.match(patient_id)
    group = f"cbis:{exam.group(1).upper()}" if exam else f"study:{text(header, 'StudyInstanceUID')}"
    incoming = replace(incoming, name=f"{patient_id or 'dicom'}-{sop_instance_uid}.dcm"[-255:])
    with _group_lock(group):
        study = _study_for(header, exam_key=exam.group(1) if exam else "")
        result = _upload(incoming, study=study, user=user)
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


def _upload(incoming: IncomingFile, *, study: Study | None, user):
    try:
        return study_upload(user=user, files=[incoming], study=study)
    except ApplicationError:
        if study is None:
            raise
        # The study's first read was claimed meanwhile: the instance starts a new study, as pages would ask.
        logger.info("Study %s is being read; %s starts a new study", study.pk, incoming.name)
        return study_upload(user=user, files=[incoming], study=None)


def _study_for(header, *, exam_key: str) -> Study | None:
    """The platform study this instance joins, or None for a new one."""
    woman = woman_id(text(header, "PatientID"))
    candidates = Study.objects.filter(patient__patient_id=woman, status__in=_OPEN).order_by("-created_at")
    if exam_key:
        candidates = candidates.filter(images__original_filename__istartswith=f"{exam_key}_")
    else:
        uid = text(header, "StudyInstanceUID")
        if not uid:
            return None
        candidates = candidates.filter(study_instance_uid=uid)
    for study in candidates.distinct()[:3]:
        try:
            study_images_addable(study)
        except ApplicationError:
            continue
        return study
    return None


def _group_lock(key: str) -> threading.Lock:
    with _group_locks_guard:
        return _group_locks.setdefault(key, threading.Lock())
