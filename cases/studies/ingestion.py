"""The one way images enter the platform: web uploads, the REST API (and the DICOM network) all call
study_upload(). It checks each file, stores it content-addressed, groups it into a study and queues its analysis."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import date

from django.conf import settings
from django.db import IntegrityError, transaction

from audit.services import audit_record
from cases.models import Image, Patient, Study
from cases.studies.services import study_status_refresh
from imaging.decoding import ImageMetadata, ImageRejected, decode_image
from imaging.dicom_tags import parse_laterality_view, woman_id
from imaging.limits import upload_limits
from imaging.previews import png_bytes, preview_array
from inference.serving.jobs import inference_jobs_create
from mammo_platform import storage
from mammo_platform.errors import ApplicationError

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class IncomingFile:
    name: str
    data: bytes


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


@dataclass
class _Prepared:
    """A validated file: its metadata and preview, the decoded pixels already dropped (a batch of full-size
    mammograms held at once would take gigabytes)."""

    incoming: IncomingFile
    sha256: str
    metadata: ImageMetadata
    preview_png: bytes
    laterality: str
    view: str


def _prepare(incoming: IncomingFile, *, sha256: str, laterality: str, view: str) -> _Prepared:
    # The preview is at most PREVIEW_MAX_SIDE: decoding at twice that is enough and much cheaper.
    decoded = decode_image(
        filename=incoming.name,
        data=incoming.data,
        limits=upload_limits(settings),
        max_side=2 * settings.PREVIEW_MAX_SIDE,
    )
    meta = decoded.metadata
    side, position = meta.laterality, meta.view
    if not side or not position:
        name_side, name_view = parse_laterality_view(incoming.name)
        side = side or laterality or name_side
        position = position or view or name_view
    if side not in ("L", "R"):
        raise ImageRejected(
            "laterality_missing",
            "The breast side is unknown: choose left or right in the form, or name the file like 'L_CC.png'.",
        )
    if not position:
        raise ImageRejected(
            "view_missing", "The view is unknown: choose CC or MLO in the form, or name the file like 'L_CC.png'."
        )
    return _Prepared(
        incoming=incoming,
        sha256=sha256,
        metadata=meta,
        preview_png=png_bytes(preview_array(decoded.pixels, max_side=settings.PREVIEW_MAX_SIDE)),
        laterality=side,
        view=position.upper()[:16],
    )


def _image_from_prepared(prepared: _Prepared, *, study: Study, user) -> Image:
    meta = prepared.metadata
    return Image(
        study=study,
        original_filename=prepared.incoming.name[:255],
        original=storage.original_name(prepared.sha256, meta.source_format),
        sha256=prepared.sha256,
        size_bytes=len(prepared.incoming.data),
        source_format=meta.source_format,
        preview=storage.preview_name(prepared.sha256),
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


def _patient_fields(prepared: list[_Prepared], *, patient_id: str, name: str, birth_date: date | None) -> dict:
    """Patient identity from the form, else from the first DICOM."""
    first_dicom = next((p.metadata for p in prepared if p.metadata.source_format == "dicom"), None)
    fields = {"patient_id": patient_id.strip(), "name": name.strip(), "birth_date": birth_date, "sex": ""}
    if first_dicom is not None:
        fields["patient_id"] = fields["patient_id"] or woman_id(first_dicom.patient_id)
        fields["name"] = fields["name"] or first_dicom.patient_name[:200]
        fields["birth_date"] = fields["birth_date"] or first_dicom.patient_birth_date
        fields["sex"] = (first_dicom.patient_sex or "")[:1]
    return fields


def study_upload(
    *,
    user,
    files: list[IncomingFile],
    study: Study | None = None,
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
    """
    if not files:
        raise ApplicationError("No files were uploaded.")
    if len(files) > settings.MAMMO_MAX_FILES_PER_UPLOAD:
        raise ApplicationError(f"At most {settings.MAMMO_MAX_FILES_PER_UPLOAD} files can be uploaded at once.")
    outcomes: dict[int, FileOutcome] = {}
    prepared: list[tuple[int, _Prepared]] = []
    seen: dict[str, str] = {}
    for index, incoming in enumerate(files):
        sha = hashlib.sha256(incoming.data).hexdigest()
        existing = Image.objects.filter(sha256=sha).only("pk", "study_id").first()
        if existing is not None:
            outcomes[index] = FileOutcome(
                incoming.name,
                "duplicate",
                image_id=existing.pk,
                code="duplicate",
                reason=f"This file was already uploaded (study {existing.study_id}); it was not stored again.",
            )
            continue
        if sha in seen:
            outcomes[index] = FileOutcome(
                incoming.name, "duplicate", code="duplicate", reason=f"Same content as {seen[sha]} in this upload."
            )
            continue
        try:
            item = _prepare(incoming, sha256=sha, laterality=laterality, view=view)
        except ImageRejected as exc:
            outcomes[index] = FileOutcome(incoming.name, "rejected", code=exc.code, reason=exc.reason)
            continue
        seen[sha] = incoming.name
        prepared.append((index, item))

    fields = _patient_fields(
        [p for _, p in prepared], patient_id=patient_id, name=patient_name, birth_date=patient_birth_date
    )
    if study is not None:
        expected_patient = study.patient.patient_id
    else:
        expected_patient = fields["patient_id"]
        if not expected_patient and prepared:
            for index, item in prepared:
                outcomes[index] = FileOutcome(
                    item.incoming.name,
                    "rejected",
                    code="patient_missing",
                    reason="No patient ID: enter one in the form (PNG and JPEG files carry none).",
                )
            prepared = []
    # A DICOM of another woman never joins this study.
    kept = []
    for index, item in prepared:
        dicom_patient = woman_id(item.metadata.patient_id)
        if (
            item.metadata.source_format == "dicom"
            and not patient_id
            and dicom_patient
            and (dicom_patient != expected_patient)
        ):
            outcomes[index] = FileOutcome(
                item.incoming.name,
                "rejected",
                code="patient_mismatch",
                reason=f"This DICOM belongs to patient {dicom_patient}, not {expected_patient}.",
            )
        else:
            kept.append((index, item))
    prepared = kept

    written: list[str] = []
    try:
        for _, item in prepared:
            for name, data in (
                (storage.original_name(item.sha256, item.metadata.source_format), item.incoming.data),
                (storage.preview_name(item.sha256), item.preview_png),
            ):
                if storage.put(name, data):
                    written.append(name)
        study = _study_rows_create(
            user=user,
            prepared=prepared,
            outcomes=outcomes,
            study=study,
            patient_fields=fields,
            accession_number=accession_number,
            study_date=study_date,
            description=description,
        )
    except BaseException:
        for name in written:
            storage.delete(name)
        raise
    # Files of duplicates that lost a race to a concurrent upload are not referenced by any row.
    for index, item in prepared:
        if outcomes[index].status != "accepted":
            for name in (
                storage.original_name(item.sha256, item.metadata.source_format),
                storage.preview_name(item.sha256),
            ):
                if name in written and not Image.objects.filter(sha256=item.sha256).exists():
                    storage.delete(name)
    return UploadResult(study=study, outcomes=[outcomes[i] for i in sorted(outcomes)])


@transaction.atomic
def _study_rows_create(
    *, user, prepared, outcomes, study, patient_fields, accession_number, study_date, description
) -> Study | None:
    if not prepared:
        return study
    if study is None:
        first = prepared[0][1].metadata
        patient, created = Patient.objects.get_or_create(
            patient_id=patient_fields["patient_id"],
            defaults={k: v for k, v in patient_fields.items() if k != "patient_id" and v not in (None, "")},
        )
        study = Study.objects.create(
            patient=patient,
            accession_number=(accession_number or first.accession_number)[:64],
            study_instance_uid=first.study_instance_uid,
            study_date=study_date or first.study_date,
            description=(description or first.study_description)[:200],
            created_by=user,
        )
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
    return study_status_refresh(study=study)
