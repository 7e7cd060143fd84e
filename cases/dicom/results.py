"""After an analysis succeeds: the AI result as DICOM objects (imaging.dicom_results), stored, and queued for
delivery to the configured destination.

Per analysed DICOM image: a Structured Report and the overlay as a Secondary Capture; per study, once none of its
analyses is still pending: a study report over every analysed image. Objects are made once (their SOP Instance
UIDs are derived from the source image and the model file, and their bytes from the prediction alone), so running
this again, or a redelivered task, changes nothing. PNG and JPEG uploads carry no DICOM identity: no objects.
"""

from __future__ import annotations

import hashlib
import logging
from io import BytesIO

import cv2
import numpy as np
from celery import current_app
from django.conf import settings
from django.db import IntegrityError, transaction
from PIL import Image as PILImage
from pydicom import dcmread
from pydicom.dataset import Dataset

from audit.services import audit_record
from cases.dicom.delivery import DELIVERY_TASK
from cases.models import DicomDelivery, DicomResultObject, Image, Study
from imaging.dicom_results import AiResult, image_result_sr, overlay_secondary_capture, study_result_sr
from inference.models import InferenceJob, ModelVersion, Prediction
from mammo_platform import storage

logger = logging.getLogger(__name__)

RESULTS_FOLDER = "dicom-results"
PENDING_JOB_STATUSES = (InferenceJob.Status.WAITING_FOR_MODEL, InferenceJob.Status.QUEUED, InferenceJob.Status.RUNNING)


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


def dicom_results_for_prediction(*, prediction_id: int) -> list[DicomResultObject]:
    """The objects of one prediction (and of its study when it was the last analysis to finish); new ones are
    queued for delivery. Returns the objects made by this call."""
    prediction = Prediction.objects.select_related("image__study", "model_version").get(pk=prediction_id)
    image = prediction.image
    if image.source_format != Image.Format.DICOM:
        return []
    source = _source_header(image)
    result = ai_result_of(prediction, with_overlay=True)
    made = [
        _store(ds, kind=kind, study=image.study, image=image, model_version=prediction.model_version)
        for kind, ds in (
            (DicomResultObject.Kind.IMAGE_SR, image_result_sr(source=source, result=result)),
            (DicomResultObject.Kind.OVERLAY_SC, overlay_secondary_capture(source=source, result=result)),
        )
    ]
    study_report = dicom_study_result(study=image.study, model_version=prediction.model_version)
    if study_report is not None:
        made.append(study_report)
    return [obj for obj in made if obj is not None]


def dicom_study_result(*, study: Study, model_version: ModelVersion) -> DicomResultObject | None:
    """The study report over every analysed DICOM image, once none of the study's analyses is pending."""
    if InferenceJob.objects.filter(image__study=study, status__in=PENDING_JOB_STATUSES).exists():
        return None
    predictions = list(
        Prediction.objects.filter(
            image__study=study, model_version=model_version, image__source_format=Image.Format.DICOM
        ).select_related("image", "model_version")
    )
    if not predictions:
        return None
    findings = [(_source_header(p.image), ai_result_of(p, with_overlay=False)) for p in predictions]
    return _store(
        study_result_sr(findings=findings),
        kind=DicomResultObject.Kind.STUDY_SR,
        study=study,
        image=None,
        model_version=model_version,
    )


def ai_result_of(prediction: Prediction, *, with_overlay: bool) -> AiResult:
    version = prediction.model_version
    peak = prediction.heatmap_peak or {}
    return AiResult(
        model_name=version.name,
        model_version=str(version.card.get("version") or version.file_sha256[:12]),
        model_sha256=version.file_sha256,
        validated=bool(version.validation.validated),
        probability=float(prediction.probability),
        threshold=float(prediction.threshold),
        label=prediction.label,
        peak_row=float(peak.get("row", 0.0)),
        peak_column=float(peak.get("column", 0.0)),
        created_at=prediction.created_at,
        overlay_rgb=_overlay_picture(prediction) if with_overlay else None,
        laterality=prediction.image.laterality,
    )


def _source_header(image: Image) -> Dataset:
    return dcmread(storage.path_of(image.original), stop_before_pixels=True)


def _overlay_picture(prediction: Prediction) -> np.ndarray:
    """The preview with the heatmap blended in (JET colours, opacity growing with the heatmap), as RGB."""
    preview = np.asarray(PILImage.open(BytesIO(storage.read(prediction.image.preview))).convert("L"))
    heatmap = np.asarray(PILImage.open(BytesIO(storage.read(prediction.heatmap))).convert("L"))
    heatmap = cv2.resize(heatmap, (preview.shape[1], preview.shape[0]), interpolation=cv2.INTER_LINEAR)
    colour = cv2.cvtColor(cv2.applyColorMap(heatmap, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB).astype(np.float32)
    alpha = np.clip(heatmap.astype(np.float32) / 255.0 * 1.6, 0, 1)[..., None] * 0.6
    base = np.repeat(preview[..., None], 3, axis=2).astype(np.float32)
    return np.clip(base * (1 - alpha) + colour * alpha + 0.5, 0, 255).astype(np.uint8)


def _store(ds: Dataset, *, kind: str, study: Study, image: Image | None, model_version) -> DicomResultObject | None:
    """File and row of one object, and its deliveries; None when this object already exists."""
    uid = str(ds.SOPInstanceUID)
    if DicomResultObject.objects.filter(sop_instance_uid=uid).exists():
        return None
    out = BytesIO()
    ds.save_as(out, enforce_file_format=True)
    data = out.getvalue()
    sha256 = hashlib.sha256(data).hexdigest()
    name = result_file_name(sha256)
    storage.put(name, data)
    try:
        with transaction.atomic():
            obj = DicomResultObject.objects.create(
                study=study, image=image, model_version=model_version, kind=kind, sop_class_uid=str(ds.SOPClassUID),
                sop_instance_uid=uid, series_instance_uid=str(ds.SeriesInstanceUID),
                study_instance_uid=str(ds.StudyInstanceUID), file=name, sha256=sha256, size_bytes=len(data),
            )  # fmt: skip
            deliveries = [DicomDelivery.objects.create(result=obj, destination=d) for d in dicom_destinations()]
            audit_record(
                action="dicom.result_created",
                obj=obj,
                study_id=study.pk,
                details={"kind": kind, "sop_instance_uid": uid, "destinations": [d.destination for d in deliveries]},
            )
            transaction.on_commit(lambda: _enqueue(deliveries))
    except IntegrityError:  # made a moment ago by a concurrent task: same UID, same bytes
        return None
    logger.info("DICOM result %s (%s) for study %s stored", uid, kind, study.pk)
    return obj


def _enqueue(deliveries: list[DicomDelivery]) -> None:
    for delivery in deliveries:
        try:
            current_app.send_task(DELIVERY_TASK, kwargs={"delivery_id": delivery.pk})
        except Exception:  # the broker is down: the delivery sweep sends pending deliveries later
            logger.exception("Could not queue delivery %s", delivery.pk)
