"""The analysis of one image, as the Celery task runs it: read the stored original, decode, preprocess, the model
and Grad-CAM, heatmap files, one Prediction row (without heatmap files for a model whose runtime gives none). Job
state changes go through inference.serving.jobs."""

from __future__ import annotations

import hashlib
import logging
import time
import traceback

import numpy as np
from django.conf import settings
from django.db import transaction

from audit.services import audit_record
from core import storage
from core.workers import worker_name
from imaging.decoding import ImageRejected
from imaging.heatmaps import heatmap_peak, heatmap_pngs
from imaging.limits import upload_limits
from imaging.previews import preview_shape
from imaging.working_image import working_image_pixels
from inference.models import InferenceJob, Prediction
from inference.serving.jobs import (
    ANALYSIS_DEFERRED,
    Status,
    TransientInferenceError,
    inference_job_claim,
    inference_job_fail,
    inference_job_transition,
)
from inference.serving.loading import ModelLoadError
from inference.serving.preprocessing import decode_for_model, heatmap_to_original

logger = logging.getLogger(__name__)
HEATMAP_MAX_SIDE = 256


def inference_job_run(*, job_id: int) -> Prediction | None:
    """Analyse one image with the job's model: decode, preprocess, predict, Grad-CAM, files, one Prediction row.

    Idempotent: a job that has succeeded is left alone, and the prediction is keyed by (image, model version), so
    a redelivered message never creates a second one. Transient errors propagate as TransientInferenceError for
    the task to retry; everything else fails the job with a reason for the user and the detail for engineers.
    """
    from inference.serving.runtime import analyse, loaded_model_get

    job = inference_job_claim(job_id, worker=worker_name())
    if job is None:
        return None
    image, version = job.image, job.model_version
    started = time.perf_counter()
    try:
        pixels = _model_pixels(image)
        timings = {"read_ms": _ms_since(started)}
        mark = time.perf_counter()
        loaded = loaded_model_get(version)
        if (load_ms := _ms_since(mark)) >= 1.0:  # the first job of a worker process loads the model
            timings["model_load_ms"] = load_ms
        analysis = analyse(pixels, loaded)
        timings.update(analysis.timings_ms)
        heatmap_name, overlay_name, peak = "", "", {}
        if analysis.cam is not None:  # a model whose runtime gives no heatmap: a score alone, and no files
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
            peak = heatmap_peak(heatmap, original_shape=original_shape)
            peak.update(row=round(peak["row"], 1), column=round(peak["column"], 1))
        timings["total_ms"] = _ms_since(started)
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


def _model_pixels(image) -> np.ndarray:
    """The pixels the model sees: the working image ingestion kept (no second decode), checked against its
    SHA-256; for an image stored before working images existed, the original, decoded here."""
    name, expected = (
        (image.working_image, image.working_sha256) if image.working_image else (image.original, image.sha256)
    )
    try:
        data = storage.read(name)
    except OSError as exc:
        raise TransientInferenceError(f"Could not read the stored image {name}: {exc}") from exc
    if hashlib.sha256(data).hexdigest() != expected:
        raise ImageRejected("corrupt_original", "The stored image no longer matches its checksum.")
    if image.working_image:
        return working_image_pixels(data)
    return decode_for_model(filename=image.original, data=data, limits=upload_limits(settings)).pixels


def _ms_since(mark: float) -> float:
    return round((time.perf_counter() - mark) * 1000, 1)


@transaction.atomic
def _prediction_store(*, job_id: int, analysis, heatmap_name: str, overlay_name: str, peak: dict, timings: dict):
    job = (
        InferenceJob.all_objects.select_for_update(of=("self",))
        .select_related("image", "model_version")
        .defer(*ANALYSIS_DEFERRED)
        .get(pk=job_id)
    )
    if job.status == Status.SUCCEEDED:
        return job.prediction
    if job.started_at and job.queued_at:
        timings["queue_wait_ms"] = round((job.started_at - job.queued_at).total_seconds() * 1000, 1)
    version = job.model_version
    # The job's row is locked and it has not succeeded, so no other transaction stores this prediction; the unique
    # constraint (image, model version) backs that up.
    prediction = Prediction.all_objects.filter(image=job.image, model_version=version).first()
    if prediction is None:
        prediction = Prediction.all_objects.create(
            shadow=job.shadow,  # a shadow job's prediction is a shadow prediction: no reader sees it
            job=job,
            image=job.image,
            model_version=version,
            probability=analysis.probability,
            raw_probability=analysis.raw_probability,
            threshold=version.threshold,
            label=analysis.label,
            heatmap=heatmap_name,
            overlay=overlay_name,
            heatmap_peak=peak,
            input_sha256=job.image.sha256,
            timings_ms=timings,
        )
    inference_job_transition(job=job, status=Status.SUCCEEDED)
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
            "threshold": prediction.threshold,  # no label: what the score may be called depends on the model's
            "timings_ms": timings,  # validation (inference.serving.outputs), not on this row
            "heatmap": bool(heatmap_name),
            "shadow": job.shadow,
        },
    )
    return prediction
