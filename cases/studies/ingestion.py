"""The one way images enter the platform: web uploads, the REST API and the DICOM network all call study_upload().

Each file is checked (format, size, pixel budget, that it is a mammogram, that a breast can be found in it),
decoded once at the model's working resolution, and stored content-addressed with its preview, its working image
(so the analysis never decodes it again) and the reading viewer's full-resolution pixels; then the rows are written
and the analysis is queued. A bad file
is reported by name and never costs the good ones of its batch; files are removed again only when their rows were
not written.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date

from django.conf import settings
from django.db import IntegrityError, transaction

from audit.services import audit_record
from cases.models import Image, Patient, Read, Study
from cases.studies.grouping import StudyGroup, study_group_lock
from cases.studies.placement import group_for
from cases.studies.preparation import IncomingFile, PreparedFile, file_prepare
from cases.studies.services import study_status_refresh
from cases.studies.signals import study_images_added
from core import storage
from core.errors import ApplicationError
from core.times import local_datetime_text
from imaging.decoding import ImageRejected
from imaging.dicom_tags import woman_id
from inference.serving.jobs import inference_jobs_create

logger = logging.getLogger(__name__)


@dataclass
class FileOutcome:
    filename: str
    status: str  # accepted | duplicate | rejected
    image_id: int | None = None
    code: str = ""
    reason: str = ""


@dataclass
class UploadResult:
    study: Study | None
    outcomes: list[FileOutcome] = field(default_factory=list)

    @property
    def accepted(self) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.status == "accepted"]


def _image_from_prepared(prepared: PreparedFile, *, study: Study, user) -> Image:
    meta = prepared.metadata
    return Image(
        study=study,
        original_filename=prepared.incoming.name[:255],
        original=storage.original_name(prepared.sha256, meta.source_format),
        sha256=prepared.sha256,
        size_bytes=prepared.incoming.size,
        source_format=meta.source_format,
        preview=storage.preview_name(prepared.sha256),
        working_image=storage.working_name(prepared.sha256),
        viewer_pixels=storage.viewer_pixels_name(prepared.sha256),
        working_sha256=prepared.working_sha256,
        laterality=prepared.laterality,
        view=prepared.view,
        rows=meta.rows,
        columns=meta.columns,
        bits_stored=meta.bits_stored,
        photometric_interpretation=meta.photometric_interpretation,
        sop_instance_uid=meta.sop_instance_uid,
        sop_class_uid=meta.sop_class_uid,
        dicom_study_instance_uid=meta.study_instance_uid,
        series_instance_uid=meta.series_instance_uid,
        transfer_syntax_uid=meta.transfer_syntax_uid,
        modality=meta.modality,
        manufacturer=meta.manufacturer[:64],
        pixel_spacing_mm=list(meta.pixel_spacing_mm) if meta.pixel_spacing_mm else None,
        window_applied=meta.window_applied[:64],
        dicom_attributes=meta.extra,
        uploaded_by=user,
    )


def _person_name(dicom_name: str, dicom_patient_id: str) -> str:
    """PatientName as a name. CBIS-DDSM (and other anonymised sets) put an identifier there, sometimes one that
    names the view ('Mass-Test_P_00820_LEFT_CC'): that is no name and is not shown as one."""
    name = (dicom_name or "").strip()
    if not name or name == (dicom_patient_id or "").strip() or woman_id(name) != name:
        return ""
    return name[:200]


def _patient_fields(prepared: list[PreparedFile], *, patient_id: str, name: str, birth_date: date | None) -> dict:
    """Patient identity from the form, else from the first DICOM."""
    first_dicom = next((p.metadata for p in prepared if p.metadata.source_format == "dicom"), None)
    fields = {"patient_id": patient_id.strip(), "name": name.strip(), "birth_date": birth_date, "sex": ""}
    if first_dicom is not None:
        fields["patient_id"] = fields["patient_id"] or woman_id(first_dicom.patient_id)
        fields["name"] = fields["name"] or _person_name(first_dicom.patient_name, first_dicom.patient_id)
        fields["birth_date"] = fields["birth_date"] or first_dicom.patient_birth_date
        fields["sex"] = (first_dicom.patient_sex or "")[:1]
    return fields


def study_images_addable(study: Study) -> None:
    """Images can be added to a study only until its first read is claimed. After that the readers would be
    reading (or have read) an exam that changed under them: new images belong to a new study, which is read in
    its own right. Raises ApplicationError with the reason."""
    read = Read.objects.filter(study=study).select_related("reader").order_by("claimed_at").first()
    if read is not None or study.status in (Study.Status.ARBITRATION, Study.Status.FINAL):
        since = f" ({read.get_kind_display().lower()} claimed {local_datetime_text(read.claimed_at)})" if read else ""
        raise ApplicationError(
            f"Reading of study {study.pk} has started{since}: images can no longer be added to it. "
            "Upload them as a new study of this woman; it will be read on its own."
        )


def study_upload(
    *,
    user,
    files: list[IncomingFile],
    study: Study | None = None,
    group: StudyGroup | None = None,
    patient_id: str = "",
    patient_name: str = "",
    patient_birth_date: date | None = None,
    accession_number: str = "",
    study_date: date | None = None,
    description: str = "",
    laterality: str = "",
    view: str = "",
) -> UploadResult:
    """Store one or several files as images of one study (a new one unless `study` is given) and queue their
    analysis. Good files are accepted and bad ones reported by name; nothing is half-stored.

    `laterality`/`view` apply to PNG/JPEG files (DICOMs carry their own); a file name like 'L_CC.png' also works.
    Adding to an existing study: only before its first read is claimed, and PNG/JPEG files (which carry no patient)
    only when `patient_id` repeats the study's patient ID, so that nobody attaches a picture to a woman by mistake.
    `group` (received DICOM instances, instead of `study`): the files join the study the group finds, looked up
    under the group's lock in the transaction that writes the rows (cases.studies.grouping), else a new one; so
    the views of one study sent at once by several processes make one study.
    """
    try:
        if not files:
            raise ApplicationError("No files were uploaded.")
        if len(files) > settings.MAMMO_MAX_FILES_PER_UPLOAD:
            raise ApplicationError(f"At most {settings.MAMMO_MAX_FILES_PER_UPLOAD} files can be uploaded at once.")
        if study is not None:
            study_images_addable(study)
        return _upload(
            user=user,
            files=files,
            study=study,
            group=group,
            patient_id=patient_id,
            patient_name=patient_name,
            patient_birth_date=patient_birth_date,
            accession_number=accession_number,
            study_date=study_date,
            description=description,
            laterality=laterality,
            view=view,
        )
    finally:
        for incoming in files:  # what was accepted has been moved into the store; the rest goes
            incoming.discard()


def _upload(*, user, files, study, group, patient_id, patient_name, patient_birth_date, accession_number, study_date,
            description, laterality, view) -> UploadResult:  # fmt: skip
    outcomes: dict[int, FileOutcome] = {}
    prepared: list[tuple[int, PreparedFile]] = []
    seen: dict[str, str] = {}
    for index, incoming in enumerate(files):
        if incoming.too_large or incoming.path is None:
            limit = settings.MAMMO_MAX_FILE_BYTES // (1024 * 1024)
            outcomes[index] = FileOutcome(
                incoming.name,
                "rejected",
                code="file_too_large",
                reason=f"The file is larger than the {limit} MB upload limit.",
            )
            continue
        existing = Image.objects.filter(sha256=incoming.sha256).only("pk", "study_id").first()
        if existing is not None:
            outcomes[index] = _duplicate(incoming.name, existing, "This file was already uploaded")
            continue
        if incoming.sha256 in seen:
            outcomes[index] = FileOutcome(
                incoming.name,
                "duplicate",
                code="duplicate",
                reason=f"Same content as {seen[incoming.sha256]} in this upload.",
            )
            continue
        try:
            item = file_prepare(incoming, laterality=laterality, view=view)
        except ImageRejected as exc:
            outcomes[index] = FileOutcome(incoming.name, "rejected", code=exc.code, reason=exc.reason)
            continue
        uid = item.metadata.sop_instance_uid
        same_instance = Image.objects.filter(sop_instance_uid=uid).only("pk", "study_id").first() if uid else None
        if same_instance is not None:
            # The same DICOM instance again (a PACS re-sending it, re-encoded): acknowledged, not stored twice.
            _remove(item.written, sha256=item.sha256)
            outcomes[index] = _duplicate(
                incoming.name, same_instance, "This DICOM instance (SOP Instance UID) is already stored"
            )
            continue
        seen[incoming.sha256] = incoming.name
        prepared.append((index, item))

    fields = _patient_fields(
        [p for _, p in prepared], patient_id=patient_id, name=patient_name, birth_date=patient_birth_date
    )
    if study is None and group is None and prepared:
        # An upload that starts a study: its appointment by accession number (the form's, else the first DICOM's),
        # or held at a site that holds unmatched images (cases.studies.placement).
        first_dicom = next((p.metadata for _, p in prepared if p.metadata.source_format == "dicom"), None)
        accession = accession_number.strip() or (first_dicom.accession_number if first_dicom else "")
        group = group_for(accession_number=accession, patient_id=fields["patient_id"], base=None)
    expected_patient = study.patient.patient_id if study is not None else fields["patient_id"]
    kept = []
    for index, item in prepared:
        problem = _patient_problem(item, study=study, expected=expected_patient, given=patient_id.strip())
        if problem is None:
            kept.append((index, item))
        else:
            _remove(item.written, sha256=item.sha256)
            outcomes[index] = FileOutcome(item.incoming.name, "rejected", code=problem[0], reason=problem[1])
    prepared = kept

    originals: list[str] = []
    try:
        for _, item in prepared:
            name = storage.original_name(item.sha256, item.metadata.source_format)
            if storage.put_file(name, item.incoming.path, move=not item.incoming.borrowed):
                originals.append(name)
        study = _study_rows_create(
            user=user,
            prepared=prepared,
            outcomes=outcomes,
            study=study,
            group=group,
            patient_fields=fields,
            accession_number=accession_number,
            study_date=study_date,
            description=description,
        )
    except BaseException:
        # The rows were not written (the transaction rolled back): nothing refers to what this upload stored.
        for _, item in prepared:
            _remove(item.written, sha256=item.sha256)
        _remove(originals)
        raise
    # Files of duplicates that lost a race to a concurrent upload are not referenced by any row.
    for index, item in prepared:
        if outcomes[index].status != "accepted":
            original = storage.original_name(item.sha256, item.metadata.source_format)
            _remove([*item.written, *([original] if original in originals else [])], sha256=item.sha256)
    return UploadResult(study=study, outcomes=[outcomes[i] for i in sorted(outcomes)])


def _duplicate(filename: str, existing: Image, what: str) -> FileOutcome:
    return FileOutcome(
        filename,
        "duplicate",
        image_id=existing.pk,
        code="duplicate",
        reason=f"{what} (study {existing.study_id}); it was not stored again.",
    )


def _patient_problem(item: PreparedFile, *, study: Study | None, expected: str, given: str) -> tuple[str, str] | None:
    """Why this file may not join the study's patient, or None."""
    if not expected:
        return "patient_missing", "No patient ID: enter one in the form (PNG and JPEG files carry none)."
    if item.metadata.source_format == "dicom":
        # A DICOM of another woman never joins this study (unless the form names the patient explicitly).
        dicom_patient = woman_id(item.metadata.patient_id)
        if not given and dicom_patient and dicom_patient != expected:
            return "patient_mismatch", f"This DICOM belongs to patient {dicom_patient}, not {expected}."
        return None
    if study is not None and given != expected:
        return (
            "patient_unconfirmed",
            f"A {item.metadata.source_format.upper()} file carries no patient: type this study's patient ID "
            f"({expected}) in the form to confirm the image is hers.",
        )
    return None


def _study_of_group(group: StudyGroup) -> Study | None:
    """The group's open study, locked, if images may still be added to it (a claim locks the study too)."""
    found = group.find()
    if found is None:
        return None
    study = Study.objects.select_for_update().get(pk=found.pk)
    try:
        study_images_addable(study)
    except ApplicationError:
        return None  # its first read was claimed meanwhile: the images start a new study, as pages would ask
    return study


def _remove(names: list[str], *, sha256: str | None = None) -> None:
    """Remove stored files, unless an image row refers to them (the same content stored by someone else)."""
    if sha256 is not None and Image.objects.filter(sha256=sha256).exists():
        return
    for name in names:
        storage.delete(name)


@transaction.atomic
def _study_rows_create(
    *, user, prepared, outcomes, study, group, patient_fields, accession_number, study_date, description
) -> Study | None:
    if not prepared:
        return study
    if group is not None:
        # Held until this transaction commits: a concurrent sender of the same group, in any process, waits here
        # and then finds the study this one creates.
        study_group_lock(group.key)
        study = _study_of_group(group)
    elif study is not None:
        # A claim may have come in while the files were being decoded: check again under the study's lock.
        study = Study.objects.select_for_update().get(pk=study.pk)
        study_images_addable(study)
    if study is None:
        first = prepared[0][1].metadata
        patient, created = Patient.objects.get_or_create(
            patient_id=patient_fields["patient_id"],
            defaults={k: v for k, v in patient_fields.items() if k != "patient_id" and v not in (None, "")},
        )
        appointment = group.appointment if group is not None else None
        held = group is not None and group.held
        study = Study.objects.create(
            patient=patient,
            accession_number=(accession_number or first.accession_number)[:64],
            study_instance_uid=first.study_instance_uid,
            study_date=study_date or first.study_date,
            description=(description or first.study_description)[:200],
            created_by=user,
            episode_id=appointment.episode_id if appointment else None,
            appointment=appointment,
            status=Study.Status.HELD if held else Study.Status.UPLOADED,
            held_reason=group.held_reason[:200] if held else "",
        )
        if held:
            audit_record(
                action="images.held", actor=user, obj=study, study_id=study.pk,
                details={"reason": study.held_reason, "accession_number": study.accession_number,
                         "patient_id": patient.patient_id, "study_instance_uid": study.study_instance_uid},
            )  # fmt: skip
    images = []
    for index, item in prepared:
        image = _image_from_prepared(item, study=study, user=user)
        try:
            with transaction.atomic():
                image.save()
        except IntegrityError:
            # The same content arrived in a concurrent upload a moment ago.
            outcomes[index] = FileOutcome(
                item.incoming.name, "duplicate", code="duplicate", reason="This file was already uploaded."
            )
            continue
        outcomes[index] = FileOutcome(item.incoming.name, "accepted", image_id=image.pk)
        images.append(image)
    if not images and not study.images.exists():
        # Every file lost a duplicate race: do not leave an empty study behind.
        study.delete()
        return None
    inference_jobs_create(images=images)
    if study.appointment_id is not None:
        # In this transaction: the appointment follows its images (cases.screening.receivers).
        study_images_added.send(sender=Study, study=study, images=images)
    audit_record(
        action="images.uploaded",
        actor=user,
        obj=study,
        study_id=study.pk,
        details={
            "images": [{"id": i.pk, "filename": i.original_filename, "sha256": i.sha256} for i in images],
            "not_accepted": [
                {"filename": o.filename, "code": o.code} for o in outcomes.values() if o.status != "accepted"
            ],
        },
    )
    return study_status_refresh(study_id=study.pk)
