"""The model registry: registering a model file (checked to load and to produce a probability and a Grad-CAM map)
and activating one. install_default_model, register_model and the admin call these."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from inference.models import InferenceJob, ModelVersion
from inference.serving.backbones import backbone_get
from inference.serving.jobs import Status, inference_job_send, inference_job_transition
from inference.serving.loading import ModelLoadError, file_sha256, model_file_candidates
from inference.serving.preprocessing import PREPROCESSING_VERSION
from inference.serving.spec import ServingSpec, card_pooling
from mammo_platform.errors import ApplicationError


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
    confirm_unvalidated: bool = False,
    confirmed_by: str = "",
) -> ModelVersion:
    """Copy a model file into MODEL_DIR (named by its SHA-256), check that it loads the way the worker loads it and
    produces one probability per image and a Grad-CAM map, and record it. Activation is a separate, explicit step
    (or `activate=True`)."""
    from inference.serving.runtime import serving_model_load

    candidates = model_file_candidates(Path(path))
    if not candidates:
        raise ApplicationError(f"No model file at {path} (.keras or .h5).")
    source = candidates[0]
    if backbone != "custom":
        input_size = input_size or backbone_get(backbone).default_input_size
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
    spec = ServingSpec(
        model_path=target,
        backbone=backbone,
        input_size=input_size,
        pooling=card_pooling(card),
        threshold=threshold,
        calibration_scale=calibration_scale,
        calibration_bias=calibration_bias,
        preprocessing_version=preprocessing_version,
    )
    try:
        loaded = serving_model_load(spec, file_sha256=sha)
        logits, _ = loaded.cam.run(np.zeros((1, input_size, input_size, 3), dtype=np.float32))
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
            model_version_activate(
                model_version=version, confirm_unvalidated=confirm_unvalidated, confirmed_by=confirmed_by
            )
    return version


def model_version_register_from_card(
    *, model_path: Path, card: dict, name: str | None = None, activate: bool = False, confirm_unvalidated: bool = False
) -> ModelVersion:
    """Register a model file with the serving settings its model card records (the one reading of a card's serving
    block: inference.serving.spec.ServingSpec.from_card)."""
    spec = ServingSpec.from_card(model_path, card)
    return model_version_register(
        path=model_path,
        name=name or card.get("name") or f"model-{file_sha256(spec.model_path)[:8]}",
        backbone=spec.backbone,
        input_size=spec.input_size,
        threshold=spec.threshold,
        calibration_scale=spec.calibration_scale,
        calibration_bias=spec.calibration_bias,
        preprocessing_version=spec.preprocessing_version,
        metrics=card.get("metrics", {}),
        card=card,
        activate=activate,
        confirm_unvalidated=confirm_unvalidated,
        confirmed_by="confirmed when registering from its card",
    )


@transaction.atomic
def model_version_activate(
    *, model_version: ModelVersion, confirm_unvalidated: bool = False, confirmed_by: str = ""
) -> ModelVersion:
    """Make this the one active model and queue every image that was waiting for a model.

    A model that is not validated (inference.serving.validation) is activated only with `confirm_unvalidated`:
    the administrator has read why and accepts that its outputs are research scores. The confirmation, and who or
    what gave it, is in the audit row."""
    validation = model_version.validation
    if not validation.validated and not confirm_unvalidated:
        raise ApplicationError(
            f"{model_version.name} is not validated ({validation.short}). Confirm that you want to activate it: its "
            "results will be shown as research scores, not as malignant or benign."
        )
    ModelVersion.objects.select_for_update().filter(is_active=True).exclude(pk=model_version.pk).update(is_active=False)
    model_version.is_active = True
    model_version.activated_at = timezone.now()
    model_version.save(update_fields=["is_active", "activated_at"])
    audit_record(
        action="model.activated",
        obj=model_version,
        details={
            "name": model_version.name,
            "file_sha256": model_version.file_sha256,
            "validated": validation.validated,
            "validation": validation.statement,
            **({"unvalidated_confirmed_by": confirmed_by or "the administrator"} if not validation.validated else {}),
        },
    )
    waiting = InferenceJob.objects.select_for_update().filter(status=Status.WAITING_FOR_MODEL)
    for job in waiting:
        if InferenceJob.objects.filter(image_id=job.image_id, model_version=model_version).exists():
            job.delete()
            continue
        job.model_version = model_version
        job.save(update_fields=["model_version"])
        inference_job_transition(job=job, status=Status.QUEUED)
        inference_job_send(job)
    return model_version
