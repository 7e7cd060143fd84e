"""Storing what the result builders made (cases.dicom.results): the object's file and row, its deliveries to the
configured destinations (asked for through the outbox), and its audit row; or, when it could not be made, a row
that says so and why, shown on the study page, the operations page and /healthz until a retry makes it."""

from __future__ import annotations

import hashlib
import logging
import traceback
from io import BytesIO

from django.conf import settings
from django.db import IntegrityError, transaction
from pydicom.dataset import Dataset

from audit.services import audit_record
from cases.dicom.delivery import dicom_delivery_request
from cases.models import DicomDelivery, DicomResultObject, Image, Study
from core import storage

logger = logging.getLogger(__name__)
RESULTS_FOLDER = "dicom-results"
Kind, Status = DicomResultObject.Kind, DicomResultObject.Status


def result_file_name(sha256: str) -> str:
    return f"{RESULTS_FOLDER}/{sha256[:2]}/{sha256}.dcm"


def dicom_destinations() -> list[str]:
    """The configured destinations, as recorded on deliveries: 'C-STORE AET@host:port', 'STOW-RS url'."""
    found = []
    if settings.DICOM_DESTINATION_AE_TITLE and settings.DICOM_DESTINATION_HOST:
        found.append(
            f"C-STORE {settings.DICOM_DESTINATION_AE_TITLE}@{settings.DICOM_DESTINATION_HOST}:"
            f"{settings.DICOM_DESTINATION_PORT}"
        )
    if settings.DICOM_DESTINATION_STOW_URL:
        found.append(f"STOW-RS {settings.DICOM_DESTINATION_STOW_URL}")
    return found


def result_object_built(
    ds: Dataset,
    *,
    kind: str,
    study: Study,
    image: Image | None,
    model_version,
    place: DicomResultObject | None,
    version: int = 1,
    predecessor: DicomResultObject | None = None,
    content_key: str = "",
) -> DicomResultObject | None:
    """File, row and deliveries of one object made; `place` is its earlier failed row (made now) or None. Returns
    None when this very object was stored a moment ago by a concurrent task (same UID, same bytes)."""
    out = BytesIO()
    ds.save_as(out, enforce_file_format=True)
    data = out.getvalue()
    sha256 = hashlib.sha256(data).hexdigest()
    name = result_file_name(sha256)
    storage.put(name, data)
    uid = str(ds.SOPInstanceUID)
    values = {
        "status": Status.BUILT, "sop_class_uid": str(ds.SOPClassUID), "sop_instance_uid": uid,
        "series_instance_uid": str(ds.SeriesInstanceUID), "study_instance_uid": str(ds.StudyInstanceUID),
        "file": name, "sha256": sha256, "size_bytes": len(data), "error_message": "", "error_detail": "",
    }  # fmt: skip
    try:
        with transaction.atomic():
            if place is not None:
                for field, value in values.items():
                    setattr(place, field, value)
                place.attempts += 1
                place.save(update_fields=[*values, "attempts", "updated_at"])
                obj = place
            else:
                obj = DicomResultObject.objects.create(
                    study=study, image=image, model_version=model_version, kind=kind, version=version,
                    predecessor=predecessor, content_key=content_key, **values,
                )  # fmt: skip
            _supersede_older_versions(obj)
            deliveries = [DicomDelivery.objects.create(result=obj, destination=d) for d in dicom_destinations()]
            for delivery in deliveries:
                dicom_delivery_request(delivery)
            audit_record(
                action="dicom.result_created",
                obj=obj,
                study_id=study.pk,
                details={
                    "kind": kind,
                    "sop_instance_uid": uid,
                    "version": obj.version,
                    "predecessor": predecessor.sop_instance_uid if predecessor else None,
                    "destinations": [d.destination for d in deliveries],
                },
            )
    except IntegrityError:
        logger.info("DICOM result %s (%s) for study %s was stored by another task", uid, kind, study.pk)
        return None
    logger.info("DICOM result %s (%s, version %s) for study %s stored", uid, kind, obj.version, study.pk)
    return obj


def result_object_failed(
    error: BaseException,
    *,
    kind: str,
    study: Study,
    image: Image | None,
    model_version,
    place: DicomResultObject | None,
    version: int = 1,
    content_key: str = "",
) -> DicomResultObject:
    """The row that says this object could not be made, and why (its earlier failed row is updated)."""
    what = Kind(kind).label
    message = f"{what} could not be made: {error}"[:1000]
    detail = "".join(traceback.format_exception(error))[-8000:]
    with transaction.atomic():
        if place is not None:
            place.status, place.error_message, place.error_detail = Status.FAILED, message, detail
            place.attempts += 1
            place.save(update_fields=["status", "error_message", "error_detail", "attempts", "updated_at"])
            obj = place
        else:
            obj = DicomResultObject.objects.create(
                study=study, image=image, model_version=model_version, kind=kind, version=version,
                content_key=content_key, status=Status.FAILED, error_message=message, error_detail=detail,
            )  # fmt: skip
        _supersede_older_versions(obj)
        audit_record(
            action="dicom.result_failed",
            obj=obj,
            study_id=study.pk,
            details={"kind": kind, "image_id": image.pk if image else None, "version": version, "error": message},
        )
    logger.error("DICOM result %s of study %s (image %s) could not be made: %s", kind, study.pk,
                 image.pk if image else None, error)  # fmt: skip
    return obj


def _supersede_older_versions(obj: DicomResultObject) -> None:
    if obj.image_id is None:
        DicomResultObject.objects.filter(
            study_id=obj.study_id, kind=obj.kind, image__isnull=True, version__lt=obj.version, is_current=True
        ).update(is_current=False)
