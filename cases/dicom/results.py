"""The AI results as DICOM objects for the hospital's archive: which are made, when, and from what.

Per analysed DICOM image (each once per model version): its TID 1500 SR and its heatmap overlay as a Secondary
Capture. Per study: its TID 1500 study report and its Mammography CAD SR, in versions. A site chooses which of
these it makes and sends (DICOM_RESULT_OBJECTS). PNG and JPEG uploads carry no DICOM identity: no objects.

When (every step asked for through the outbox, in the transaction of the change that calls for it):
- an image's objects when its analysis succeeds;
- the study's objects once the study is stable (no new instance for DICOM_STUDY_STABLE_SECONDS, as Orthanc's
  StableAge) and every image's analysis has ended (succeeded or failed). A later image or a re-analysis changes
  what the study reports: the next version is made and references the one it replaces. The same content never
  makes a second version, so a study never has two unrelated complete reports.

Complete or visibly failed: each object is built on its own; one that cannot be made (an unusual header, storage
away) leaves a failed row with the reason, which the study page, the operations page and /healthz show, and a
retry makes it. Nothing is simply absent.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import timedelta
from io import BytesIO

import cv2
import numpy as np
from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Max
from django.utils import timezone
from PIL import Image as PILImage
from pydicom import dcmread
from pydicom.dataset import Dataset

from audit.services import audit_record
from cases.dicom.result_store import result_object_built, result_object_failed
from cases.models import DicomResultObject, Image, Study
from cases.models.clinical import image_reading_key
from core import storage
from core.errors import ApplicationError
from core.outbox import outbox_enqueue
from imaging.dicom_results.common import AiResult, derived_uid
from imaging.dicom_results.measurement_report import image_result_sr, study_result_sr
from imaging.dicom_results.overlay import overlay_secondary_capture
from inference.models import InferenceJob, Prediction

logger = logging.getLogger(__name__)
Kind, Status = DicomResultObject.Kind, DicomResultObject.Status
IMAGE_RESULTS_TASK = "cases.dicom_image_results_build"
STUDY_RESULTS_TASK = "cases.dicom_study_results_build"
UNSETTLED_JOBS = (InferenceJob.Status.WAITING_FOR_MODEL, InferenceJob.Status.QUEUED, InferenceJob.Status.RUNNING)


def chosen_kinds(scope: tuple[str, ...]) -> list[str]:
    """The kinds of objects this site makes, among `scope` (DicomResultObject.PER_IMAGE or PER_STUDY)."""
    return [kind for kind in scope if kind in settings.DICOM_RESULT_OBJECTS]


# --- Asking (in the caller's transaction) ----------------------------------------------------------------------


def dicom_image_results_request(*, prediction: Prediction) -> None:
    """An analysis succeeded: its image's objects are made after the commit."""
    image = prediction.image
    if image.source_format != Image.Format.DICOM or not chosen_kinds(DicomResultObject.PER_IMAGE):
        return
    outbox_enqueue(
        key=f"dicom-image-results:{prediction.pk}",
        task=IMAGE_RESULTS_TASK,
        kwargs={"prediction_id": prediction.pk},
        description=f"DICOM results of image {image.pk}",
        subject=f"study:{image.study_id}",
    )


def dicom_study_results_request(*, study_id: int) -> None:
    """Something the study reports changed (an analysis ended, an image came): its objects are (re)made once it is
    stable, DICOM_STUDY_STABLE_SECONDS after its newest DICOM image arrived (a later image delays them again)."""
    if not chosen_kinds(DicomResultObject.PER_STUDY):
        return
    newest = Image.objects.filter(study_id=study_id, source_format=Image.Format.DICOM).aggregate(t=Max("created_at"))
    if newest["t"] is None:
        return
    outbox_enqueue(
        key=f"dicom-study-results:{study_id}",
        task=STUDY_RESULTS_TASK,
        kwargs={"study_id": study_id},
        description=f"DICOM study report of study {study_id}",
        subject=f"study:{study_id}",
        send_after=max(newest["t"] + timedelta(seconds=settings.DICOM_STUDY_STABLE_SECONDS), timezone.now()),
    )


def dicom_result_retry(*, result_id: int, user) -> DicomResultObject:
    """A person asks for an object that could not be made to be made again."""
    with transaction.atomic():
        obj = DicomResultObject.objects.select_for_update(of=("self",)).get(pk=result_id)
        if obj.status != Status.FAILED:
            raise ApplicationError("This result object has been made; there is nothing to retry.")
        if obj.image_id is not None:
            prediction = Prediction.objects.filter(image_id=obj.image_id, model_version_id=obj.model_version_id).first()
            if prediction is None:
                raise ApplicationError("The analysis this object came from no longer exists.")
            dicom_image_results_request(prediction=prediction)
        else:
            dicom_study_results_request(study_id=obj.study_id)
        audit_record(
            action="dicom.result_retried", actor=user, obj=obj, study_id=obj.study_id,
            details={"kind": obj.kind, "version": obj.version, "error": obj.error_message},
        )  # fmt: skip
    return obj


# --- Making (in the worker) ------------------------------------------------------------------------------------


def dicom_image_results_build(*, prediction_id: int) -> list[DicomResultObject]:
    """The chosen per-image objects of one analysis that are not made yet, each on its own: one that cannot be
    made is recorded as failed without costing the others. Idempotent."""
    prediction = Prediction.objects.select_related("image__study", "model_version").get(pk=prediction_id)
    image, version = prediction.image, prediction.model_version
    if image.source_format != Image.Format.DICOM:
        return []
    existing = {o.kind: o for o in DicomResultObject.objects.filter(image=image, model_version=version)}
    builders = {Kind.IMAGE_SR: _image_sr, Kind.OVERLAY_SC: _overlay_sc}
    made = []
    for kind in chosen_kinds(DicomResultObject.PER_IMAGE):
        place = existing.get(kind)
        if place is not None and place.is_built:
            continue
        if kind == Kind.OVERLAY_SC and not prediction.has_heatmap:
            continue  # nothing to overlay: the study page says "not made: this model gives no heatmap"
        try:
            ds = builders[kind](prediction)
        except DatabaseError:
            raise  # the task retries
        except Exception as exc:  # noqa: BLE001  (recorded, shown and retryable: never silently absent)
            made.append(result_object_failed(exc, kind=kind, study=image.study, image=image,
                                             model_version=version, place=place))  # fmt: skip
            continue
        obj = result_object_built(ds, kind=kind, study=image.study, image=image, model_version=version, place=place)
        if obj is not None:
            made.append(obj)
    return made


def dicom_study_results_build(*, study_id: int) -> list[DicomResultObject]:
    """The chosen per-study objects, if the study is stable and settled and what it reports has changed since the
    current version; otherwise nothing (a later event asks again). Idempotent."""
    from cases.dicom.cad_results import cad_sr_of_study

    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=study_id)  # one maker per study at a time
        images = list(
            Image.objects.filter(study=study, source_format=Image.Format.DICOM)
            .prefetch_related("jobs", "predictions__model_version")
            .order_by("pk")
        )
        if not images:
            return []
        stable_at = max(i.created_at for i in images) + timedelta(seconds=settings.DICOM_STUDY_STABLE_SECONDS)
        if stable_at > timezone.now():
            dicom_study_results_request(study_id=study_id)  # not stable yet: asked again for when it will be
            return []
        entries = [_study_entry(image) for image in images]
        if any(entry.job is None or entry.job.status in UNSETTLED_JOBS for entry in entries):
            return []  # an analysis is still to end: its end asks again
        analysed = [entry for entry in entries if entry.prediction is not None]
        if not analysed:
            return []
        if density_estimate_pending(study):
            return []  # the CAD SR carries the study's density: the estimate's end asks again
        content_key = _content_key(entries)

        def build(kind: str, version: int, predecessor: Dataset | None) -> Dataset:
            sop_uid, series_uid = study_uids(
                study, kind=kind, version=version, content_key=content_key, anchor=entries[0].header
            )
            if kind == Kind.STUDY_SR:
                in_reading_order = sorted(analysed, key=lambda e: image_reading_key(e.image))  # RCC, LCC, RMLO, LMLO
                findings = [(e.header, ai_result_of(e.prediction, with_overlay=False)) for e in in_reading_order]
                return study_result_sr(
                    findings=findings, anchor=entries[0].header, sop_instance_uid=sop_uid,
                    series_instance_uid=series_uid, version=version, predecessor=predecessor,
                )  # fmt: skip
            return cad_sr_of_study(
                entries, sop_instance_uid=sop_uid, series_instance_uid=series_uid, version=version,
                predecessor=predecessor,
            )  # fmt: skip

        made = []
        for kind in chosen_kinds(DicomResultObject.PER_STUDY):
            newest = (
                DicomResultObject.objects.filter(study=study, kind=kind, image__isnull=True)
                .order_by("-version")
                .first()
            )
            if newest is not None and newest.content_key == content_key and newest.is_built:
                continue  # already reports exactly this
            place = newest if newest is not None and newest.content_key == content_key else None
            version = place.version if place else (newest.version + 1 if newest else 1)
            predecessor = (
                DicomResultObject.objects.filter(study=study, kind=kind, image__isnull=True, status=Status.BUILT)
                .order_by("-version")
                .first()
            )
            model_version = analysed[-1].prediction.model_version
            try:
                ds = build(kind, version, _header_of_built(predecessor) if predecessor else None)
            except DatabaseError:
                raise
            except Exception as exc:  # noqa: BLE001  (recorded, shown and retryable: never silently absent)
                made.append(result_object_failed(exc, kind=kind, study=study, image=None, model_version=model_version,
                                                 place=place, version=version, content_key=content_key))  # fmt: skip
                continue
            obj = result_object_built(
                ds, kind=kind, study=study, image=None, model_version=model_version, place=place, version=version,
                predecessor=predecessor, content_key=content_key,
            )  # fmt: skip
            if obj is not None:
                made.append(obj)
        return made


# --- What the objects are made from ----------------------------------------------------------------------------


class StudyEntry:
    """One DICOM image of a study as its study-level objects see it: its header, its current analysis and result."""

    def __init__(self, image: Image, job: InferenceJob | None, prediction: Prediction | None) -> None:
        self.image, self.job, self.prediction = image, job, prediction
        self._header: Dataset | None = None

    @property
    def header(self) -> Dataset:
        if self._header is None:
            self._header = source_header(self.image)
        return self._header

    @property
    def status(self) -> str:
        """'succeeded', 'failed' or 'not_attempted', as the CAD SR reports processing."""
        if self.prediction is not None:
            return "succeeded"
        if self.job is not None and self.job.status == InferenceJob.Status.FAILED:
            return "failed"
        return "not_attempted"


def density_estimate_pending(study: Study) -> bool:
    """Whether the study's AI density estimate of its current views is still to come (asked for, not finished, and
    not recorded yet); one that failed or was never asked for does not hold the reports back."""
    from cases.studies.ai_density import current_estimate
    from core.models import OutboxMessage

    if current_estimate(study) is not None:
        return False
    return OutboxMessage.objects.filter(key=f"ai-density:{study.pk}", status__in=OutboxMessage.UNFINISHED).exists()


def _study_entry(image: Image) -> StudyEntry:
    jobs = list(image.jobs.all())  # newest first (InferenceJob.Meta.ordering)
    job = jobs[0] if jobs else None
    prediction = None
    if job is not None and job.status == InferenceJob.Status.SUCCEEDED:
        prediction = next((p for p in image.predictions.all() if p.job_id == job.pk), None)
    return StudyEntry(image, job, prediction)


def _content_key(entries: list[StudyEntry]) -> str:
    content = [
        [e.image.sop_instance_uid, e.status, e.prediction.pk if e.prediction else None, e.job.pk if e.job else None]
        for e in entries
    ]
    return hashlib.sha256(json.dumps(content).encode()).hexdigest()


def source_header(image: Image) -> Dataset:
    with storage.open_file(image.original) as handle:
        return dcmread(handle, stop_before_pixels=True)


def ai_result_of(prediction: Prediction, *, with_overlay: bool) -> AiResult:
    version = prediction.model_version
    peak = prediction.heatmap_peak or {}  # {} for a model that gives no heatmap: a score without a location
    return AiResult(
        model_name=version.name,
        model_version=version.version_label,
        model_sha256=version.file_sha256,
        validated=bool(version.validation.validated),
        validation_summary=version.validation.short,
        score=float(prediction.probability),
        operating_point=float(prediction.threshold),
        peak_row=float(peak["row"]) if "row" in peak else None,
        peak_column=float(peak["column"]) if "column" in peak else None,
        created_at=prediction.created_at,
        overlay_rgb=_overlay_picture(prediction) if with_overlay and prediction.has_heatmap else None,
        laterality=prediction.image.laterality,
        view=prediction.image.view,
    )


def study_uids(study: Study, *, kind: str, version: int, content_key: str, anchor: Dataset) -> tuple[str, str]:
    """(SOP Instance UID, Series Instance UID) of a version of a study-level object: the same inputs, the same UIDs
    (a retried build is the same object); the series is one per study and kind, so versions sit together. They
    belong to the DICOM study of the study's first image (`anchor`)."""
    study_uid = str(anchor.StudyInstanceUID)
    return (
        derived_uid(f"{kind}-study", study_uid, str(version), content_key),
        derived_uid(f"{kind}-series", study_uid, str(study.pk)),
    )


def _image_sr(prediction: Prediction) -> Dataset:
    return image_result_sr(source=source_header(prediction.image), result=ai_result_of(prediction, with_overlay=False))


def _overlay_sc(prediction: Prediction) -> Dataset:
    return overlay_secondary_capture(
        source=source_header(prediction.image), result=ai_result_of(prediction, with_overlay=True)
    )


def _header_of_built(obj: DicomResultObject) -> Dataset:
    """The identifying attributes of a stored object, as a predecessor reference needs them."""
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = obj.sop_class_uid, obj.sop_instance_uid
    ds.SeriesInstanceUID, ds.StudyInstanceUID = obj.series_instance_uid, obj.study_instance_uid
    return ds


def _overlay_picture(prediction: Prediction) -> np.ndarray:
    """The preview with the heatmap blended in (JET colours, opacity growing with the heatmap), as RGB."""
    preview = np.asarray(PILImage.open(BytesIO(storage.read(prediction.image.preview))).convert("L"))
    heatmap = np.asarray(PILImage.open(BytesIO(storage.read(prediction.heatmap))).convert("L"))
    heatmap = cv2.resize(heatmap, (preview.shape[1], preview.shape[0]), interpolation=cv2.INTER_LINEAR)
    colour = cv2.cvtColor(cv2.applyColorMap(heatmap, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB).astype(np.float32)
    alpha = np.clip(heatmap.astype(np.float32) / 255.0 * 1.6, 0, 1)[..., None] * 0.6
    base = np.repeat(preview[..., None], 3, axis=2).astype(np.float32)
    return np.clip(base * (1 - alpha) + colour * alpha + 0.5, 0, 255).astype(np.uint8)
