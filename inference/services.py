"""Writes for the model registry and inference jobs. Tasks and views call these."""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
import traceback
from datetime import timedelta
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from cases import storage
from cases.audit import audit_record
from cases.decoding import ImageRejected
from cases.errors import ApplicationError
from cases.previews import preview_shape
from cases.services import upload_limits
from inference.backbones import backbone_get
from inference.heatmaps import heatmap_peak, heatmap_pngs
from inference.loading import ModelLoadError, file_sha256, model_file_candidates
from inference.models import InferenceJob, ModelVersion, Prediction
from inference.preprocessing import PREPROCESSING_VERSION, decode_for_model, heatmap_to_original

logger = logging.getLogger(__name__)
Status = InferenceJob.Status
HEATMAP_MAX_SIDE = 512


class TransientInferenceError(Exception):
    """Worth retrying (storage or database briefly unavailable)."""


def _enqueue(job_id: int) -> None:
    from inference.tasks import run_inference

    run_inference.apply_async(kwargs={"job_id": job_id})


def _enqueue_on_commit(job_id: int) -> None:
    transaction.on_commit(lambda: _enqueue(job_id))


# ---- jobs -----------------------------------------------------------------------------------------------------


def inference_jobs_create(*, images) -> list[InferenceJob]:
    """One job per image for the active model, queued after the caller's transaction commits; with no active
    model the jobs wait (and are queued when a model is activated)."""
    active = ModelVersion.objects.filter(is_active=True).first()
    jobs = []
    for image in images:
        if active is None:
            job, _ = InferenceJob.objects.get_or_create(
                image=image,
                model_version=None,
                defaults={
                    "status": Status.WAITING_FOR_MODEL,
                    "error_message": "No active model: analysis starts when an administrator activates one.",
                },
            )
        else:
            job, created = InferenceJob.objects.get_or_create(
                image=image, model_version=active, defaults={"status": Status.QUEUED, "queued_at": timezone.now()}
            )
            if created:
                _enqueue_on_commit(job.pk)
        jobs.append(job)
    return jobs


def inference_jobs_requeue_stale(*, older_than_seconds: int) -> list[int]:
    """Send again the jobs that are queued or running but have not moved for a while (a message lost with a
    broker restore, or a worker that vanished). Safe because tasks are idempotent. A job sent again is not sent
    again before another `older_than_seconds` (its `requeued_at`), so a sweep that runs while every worker is
    down does not pile up copies. Returns the job ids."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=older_than_seconds)
    stale = InferenceJob.objects.filter(
        Q(status=Status.QUEUED, queued_at__lt=cutoff) | Q(status=Status.RUNNING, started_at__lt=cutoff),
        Q(requeued_at__isnull=True) | Q(requeued_at__lt=cutoff),
    )
    ids = list(stale.values_list("pk", flat=True))
    if ids:
        InferenceJob.objects.filter(pk__in=ids).update(requeued_at=now)
        logger.warning("Requeued %s stale analysis job(s): %s", len(ids), ids)
    for job_id in ids:
        _enqueue(job_id)
    return ids


@transaction.atomic
def inference_job_retry(*, job: InferenceJob) -> InferenceJob:
    job = InferenceJob.objects.select_for_update().get(pk=job.pk)
    if job.status != Status.FAILED:
        raise ApplicationError(f"Only a failed analysis can be retried (this one is {job.get_status_display()}).")
    active = ModelVersion.objects.filter(is_active=True).first()
    if job.model_version_id is not None and (active is None or active.pk != job.model_version_id):
        raise ApplicationError("The model of this analysis is no longer active; it cannot be retried.")
    job.transition(Status.QUEUED)
    _enqueue_on_commit(job.pk)
    audit_record(action="job.retried", obj=job, study_id=job.image.study_id, details={"image_id": job.image_id})
    from cases.services import study_status_refresh

    study_status_refresh(study=job.image.study)
    return job


def _job_claim(job_id: int) -> InferenceJob | None:
    """Lock the job and mark it running; None when there is nothing to do (already finished, or not queued)."""
    with transaction.atomic():
        job = (
            InferenceJob.objects.select_for_update(of=("self",))
            .select_related("image", "model_version")
            .filter(pk=job_id)
            .first()
        )
        if job is None or job.status not in (Status.QUEUED, Status.RUNNING):
            # Finished, waiting or deleted: a repeated or stale message does nothing.
            return None
        # RUNNING here means the worker that ran it died before finishing (its message came back): take it over,
        # unless that keeps happening (an image that kills the worker every time must not loop forever).
        if job.status == Status.RUNNING and job.attempts >= settings.INFERENCE_MAX_ATTEMPTS:
            job.transition(
                Status.FAILED,
                error_message=f"The analysis was interrupted {job.attempts} times (the worker stopped while "
                "processing this image). An engineer should look at it; you can retry it.",
                error_detail=f"Gave up after {job.attempts} interrupted attempts.",
            )
            from cases.services import study_status_refresh

            study_status_refresh(study=job.image.study)
            return None
        job.transition(Status.RUNNING)
        return job


def inference_job_fail(job_id: int, *, message: str, detail: str) -> None:
    with transaction.atomic():
        job = InferenceJob.objects.select_for_update(of=("self",)).select_related("image__study").get(pk=job_id)
        if job.status != Status.RUNNING:
            return
        job.transition(Status.FAILED, error_message=message, error_detail=detail)
        from cases.services import study_status_refresh

        study_status_refresh(study=job.image.study)


def inference_job_run(*, job_id: int) -> Prediction | None:
    """Analyse one image with the job's model: decode, preprocess, predict, Grad-CAM, files, one Prediction row.

    Idempotent: a job that has succeeded is left alone, and the prediction is keyed by (image, model version), so
    a redelivered message never creates a second one. Transient errors propagate as TransientInferenceError for
    the task to retry; everything else fails the job with a reason for the user and the detail for engineers.
    """
    from inference.runtime import analyse, loaded_model_get

    job = _job_claim(job_id)
    if job is None:
        return None
    image, version = job.image, job.model_version
    started = time.perf_counter()
    try:
        try:
            data = storage.read(image.original)
        except OSError as exc:
            raise TransientInferenceError(f"Could not read the stored original: {exc}") from exc
        if hashlib.sha256(data).hexdigest() != image.sha256:
            raise ImageRejected("corrupt_original", "The stored original no longer matches its checksum.")
        decoded = decode_for_model(filename=image.original, data=data, limits=upload_limits())
        del data
        timings = {"decode_ms": _ms_since(started)}
        mark = time.perf_counter()
        loaded = loaded_model_get(version)
        if (load_ms := _ms_since(mark)) >= 1.0:  # the first job of a worker process loads the model
            timings["model_load_ms"] = load_ms
        analysis = analyse(decoded.pixels, loaded)
        timings.update(analysis.timings_ms)
        mark = time.perf_counter()
        original_shape = (image.rows, image.columns)
        # Drawn at up to 512 px: a Grad-CAM map is smooth, and the page stretches the overlay over the preview.
        heatmap = heatmap_to_original(
            analysis.cam, analysis.geometry, out_shape=preview_shape(original_shape, max_side=HEATMAP_MAX_SIDE)
        )
        heatmap_name, overlay_name = storage.heatmap_names(image.sha256, version.file_sha256)
        grey_png, overlay_png = heatmap_pngs(heatmap)
        # Same names on a retry: the files are replaced, never duplicated.
        storage.put(heatmap_name, grey_png, overwrite=True)
        storage.put(overlay_name, overlay_png, overwrite=True)
        timings["heatmap_files_ms"] = _ms_since(mark)
        timings["total_ms"] = _ms_since(started)
        peak = heatmap_peak(heatmap, original_shape=original_shape)
    except TransientInferenceError:
        raise
    except ImageRejected as exc:
        inference_job_fail(
            job_id, message=f"The image could not be analysed: {exc.reason}", detail=traceback.format_exc()
        )
        return None
    except ModelLoadError as exc:
        inference_job_fail(
            job_id, message="The model could not be loaded; an administrator has to fix it.", detail=str(exc)
        )
        return None
    except Exception:  # noqa: BLE001  (any other failure is shown to the user and kept for engineers)
        logger.exception("Inference job %s failed", job_id)
        inference_job_fail(
            job_id, message="The analysis failed unexpectedly. You can retry it.", detail=traceback.format_exc()
        )
        return None
    return _prediction_store(
        job_id=job_id,
        analysis=analysis,
        heatmap_name=heatmap_name,
        overlay_name=overlay_name,
        peak=peak,
        timings=timings,
    )


def _ms_since(mark: float) -> float:
    return round((time.perf_counter() - mark) * 1000, 1)


@transaction.atomic
def _prediction_store(*, job_id: int, analysis, heatmap_name: str, overlay_name: str, peak: dict, timings: dict):
    from cases.services import study_status_refresh

    job = (
        InferenceJob.objects.select_for_update(of=("self",))
        .select_related("image__study", "model_version")
        .get(pk=job_id)
    )
    if job.status == Status.SUCCEEDED:
        return job.prediction
    if job.started_at and job.queued_at:
        timings["queue_wait_ms"] = round((job.started_at - job.queued_at).total_seconds() * 1000, 1)
    version = job.model_version
    prediction, _ = Prediction.objects.get_or_create(
        image=job.image,
        model_version=version,
        defaults={
            "job": job,
            "probability": analysis.probability,
            "raw_probability": analysis.raw_probability,
            "threshold": version.threshold,
            "label": analysis.label,
            "heatmap": heatmap_name,
            "overlay": overlay_name,
            "heatmap_peak": peak,
            "input_sha256": job.image.sha256,
            "timings_ms": timings,
        },
    )
    job.transition(Status.SUCCEEDED)
    audit_record(
        action="prediction.created",
        obj=prediction,
        study_id=job.image.study_id,
        details={
            "image_id": job.image_id,
            "model_version": version.name,
            "model_file_sha256": version.file_sha256,
            "input_sha256": prediction.input_sha256,
            "probability": prediction.probability,
            "raw_probability": prediction.raw_probability,
            "threshold": prediction.threshold,
            "label": prediction.label,
            "timings_ms": timings,
        },
    )
    study_status_refresh(study=job.image.study)
    return prediction


# ---- model registry -------------------------------------------------------------------------------------------


def model_version_register(
    *,
    path: Path,
    name: str,
    backbone: str,
    input_size: int | None = None,
    threshold: float = 0.5,
    calibration_scale: float = 1.0,
    calibration_bias: float = 0.0,
    preprocessing_version: str = PREPROCESSING_VERSION,
    metrics: dict | None = None,
    card: dict | None = None,
    activate: bool = False,
) -> ModelVersion:
    """Copy a model file into MODEL_DIR (named by its SHA-256), check that it loads and produces one probability
    per image and a Grad-CAM map, and record it. Activation is a separate, explicit step (or `activate=True`)."""
    from inference.gradcam import cam_model_build
    from inference.loading import card_pooling, load_classifier

    candidates = model_file_candidates(Path(path))
    if not candidates:
        raise ApplicationError(f"No model file at {path} (.keras or .h5).")
    source = candidates[0]
    if backbone != "custom":
        spec = backbone_get(backbone)
        input_size = input_size or spec.default_input_size
    if not input_size:
        raise ApplicationError("The input size is required for a custom backbone.")
    if ModelVersion.objects.filter(name=name).exists():
        raise ApplicationError(f"A model version named {name!r} already exists.")
    sha = file_sha256(source)
    target_dir = Path(settings.MODEL_DIR)
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{sha}{source.suffix}"
    if not target.exists():
        shutil.copyfile(source, target)
    try:
        model = load_classifier(target, backbone=backbone, input_size=input_size, pooling=card_pooling(card))
        cam = cam_model_build(model)
        logits, cams = cam.run(np.zeros((1, input_size, input_size, 3), dtype=np.float32))
        if logits.shape != (1,):
            raise ModelLoadError(f"The model gives {logits.shape} outputs per image; one probability is expected.")
    except Exception as exc:  # noqa: BLE001
        raise ApplicationError(f"The model file does not work: {exc}") from exc
    with transaction.atomic():
        version = ModelVersion.objects.create(
            name=name,
            backbone=backbone,
            input_size=input_size,
            file=target.name,
            file_sha256=sha,
            preprocessing_version=preprocessing_version,
            threshold=threshold,
            calibration_scale=calibration_scale,
            calibration_bias=calibration_bias,
            metrics=metrics or {},
            card=card or {},
        )
        audit_record(
            action="model.registered",
            obj=version,
            details={"name": name, "backbone": backbone, "file_sha256": sha, "threshold": threshold},
        )
        if activate:
            model_version_activate(model_version=version)
    return version


@transaction.atomic
def model_version_activate(*, model_version: ModelVersion) -> ModelVersion:
    """Make this the one active model and queue every image that was waiting for a model."""
    ModelVersion.objects.select_for_update().filter(is_active=True).exclude(pk=model_version.pk).update(is_active=False)
    model_version.is_active = True
    model_version.activated_at = timezone.now()
    model_version.save(update_fields=["is_active", "activated_at"])
    audit_record(
        action="model.activated",
        obj=model_version,
        details={"name": model_version.name, "file_sha256": model_version.file_sha256},
    )
    waiting = InferenceJob.objects.select_for_update().filter(status=Status.WAITING_FOR_MODEL)
    for job in waiting:
        if InferenceJob.objects.filter(image_id=job.image_id, model_version=model_version).exists():
            job.delete()
            continue
        job.model_version = model_version
        job.save(update_fields=["model_version"])
        job.transition(Status.QUEUED)
        _enqueue_on_commit(job.pk)
    return model_version
