"""Writes to the clinical domain. Views, the API and tasks call these; they hold the rules."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from datetime import date

from django.conf import settings
from django.db import IntegrityError, transaction

from cases import storage
from cases.audit import audit_record
from cases.decoding import DecodeLimits, ImageMetadata, ImageRejected, decode_image
from cases.errors import ApplicationError
from cases.models import Image, Patient, Study
from cases.previews import png_bytes, preview_array

logger = logging.getLogger(__name__)

_CBIS_PATIENT = re.compile(r"^(?:Mass|Calc)-(?:Training|Test)_(P_\d+)_(?:LEFT|RIGHT)_(?:CC|MLO)", re.IGNORECASE)
_FILENAME_SIDE_VIEW = re.compile(
    r"(?:^|[^A-Za-z])(?P<side>L|R|LEFT|RIGHT)[ _-]?(?P<view>CC|MLO|ML|LM|XCCL)(?:[^A-Za-z]|$)", re.IGNORECASE
)


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


def patient_id_normalise(raw: str) -> str:
    """CBIS-DDSM encodes the view in PatientID ('Mass-Test_P_00173_RIGHT_CC'); the woman is 'P_00173'."""
    raw = (raw or "").strip()
    match = _CBIS_PATIENT.match(raw)
    return match.group(1).upper() if match else raw


def side_and_view_from_filename(filename: str) -> tuple[str, str]:
    match = _FILENAME_SIDE_VIEW.search(filename.rsplit("/", 1)[-1])
    if not match:
        return "", ""
    return match.group("side")[0].upper(), match.group("view").upper()


def upload_limits() -> DecodeLimits:
    """The configured limits for files users upload (also applied when the worker re-reads them)."""
    return DecodeLimits(max_file_bytes=settings.MAMMO_MAX_FILE_BYTES, max_pixels=settings.MAMMO_MAX_PIXELS)


def _prepare(incoming: IncomingFile, *, sha256: str, laterality: str, view: str) -> _Prepared:
    # The preview is at most PREVIEW_MAX_SIDE: decoding at twice that is enough and much cheaper.
    decoded = decode_image(
        filename=incoming.name, data=incoming.data, limits=upload_limits(), max_side=2 * settings.PREVIEW_MAX_SIDE
    )
    meta = decoded.metadata
    side, position = meta.laterality, meta.view
    if not side or not position:
        name_side, name_view = side_and_view_from_filename(incoming.name)
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
        preview_png=png_bytes(preview_array(decoded.pixels)),
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
        fields["patient_id"] = fields["patient_id"] or patient_id_normalise(first_dicom.patient_id)
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
        dicom_patient = patient_id_normalise(item.metadata.patient_id)
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
    from inference.services import inference_jobs_create

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


def study_transition(*, study: Study, status: str, recall: bool | None = None) -> Study:
    """The one place a study's status changes (and is audited). Call inside a transaction."""
    from django.utils import timezone

    from cases.audit import audit_record

    if status == study.status:
        return study
    if status not in Study.ALLOWED[study.status]:
        raise ApplicationError(f"Study {study.pk}: {study.get_status_display()} -> {status} is not allowed.")
    previous = study.status
    study.status = status
    fields = ["status", "updated_at"]
    if status == Study.Status.FINAL:
        study.final_recall, study.finalised_at = recall, timezone.now()
        fields += ["final_recall", "finalised_at"]
    study.save(update_fields=fields)
    audit_record(
        action="study.status_changed",
        obj=study,
        study_id=study.pk,
        details={"from": previous, "to": status, **({"final_recall": recall} if status == Study.Status.FINAL else {})},
    )
    return study


@transaction.atomic
def study_status_refresh(*, study: Study) -> Study:
    """Move a study between 'uploaded', 'processing' and 'awaiting reads' from its images' analyses.

    Later states (arbitration, final) are set by the reading workflow (cases.reading) and not touched here.
    """
    from inference.models import InferenceJob

    # Lock the study: two images finishing at once must not each see the other still running (READ COMMITTED
    # re-reads the jobs below after the lock is granted, so the second one sees the first's result).
    study = Study.objects.select_for_update().get(pk=study.pk)
    if study.status not in (Study.Status.UPLOADED, Study.Status.PROCESSING, Study.Status.AWAITING_READS):
        return study
    jobs = InferenceJob.objects.filter(image__study=study)
    if not jobs.exists():
        new = Study.Status.UPLOADED
    elif jobs.exclude(status__in=[InferenceJob.Status.SUCCEEDED, InferenceJob.Status.FAILED]).exists():
        new = Study.Status.PROCESSING
    else:
        new = Study.Status.AWAITING_READS
    if new != study.status and new in Study.ALLOWED[study.status]:
        study_transition(study=study, status=new)
    return study
