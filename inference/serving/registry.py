"""Registering a Keras model file of the platform's own kind (checked to load and to produce a probability and a
Grad-CAM map): install_default_model, register_model and train_model --register call this. Models from elsewhere
come in through inference.imports (import_model, the import page); status changes, activation included, are
inference.lifecycle's."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction

from audit.services import audit_record
from core.errors import ApplicationError
from inference.lifecycle import (
    model_status_record_created,
    model_version_accept_for_research,
    model_version_activate,
)
from inference.models import ModelVersion
from inference.serving.backbones import backbone_get
from inference.serving.loading import ModelLoadError, file_sha256, model_file_candidates
from inference.serving.preprocessing import PREPROCESSING_VERSION
from inference.serving.spec import ServingSpec, card_pooling


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
    registered_by: str = "register_model",
    actor=None,
) -> ModelVersion:
    """Copy a model file into MODEL_DIR (named by its SHA-256), check that it loads the way the worker loads it and
    produces one probability per image and a Grad-CAM map, and record it as imported. Activation is a separate,
    explicit step; `activate=True` does it here the way the shipped research model is activated: accepted for
    research use by `confirmed_by` (no local acceptance test), then made active (inference.lifecycle)."""
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
        out = loaded.network.run(np.zeros((1, input_size, input_size, 3), dtype=np.float32))
        if out.logit.shape != (1,):
            raise ModelLoadError(f"The model gives {out.logit.shape} outputs per image; one probability is expected.")
        if out.cams is None:
            raise ModelLoadError(
                f"The model gives no Grad-CAM map ({loaded.network.no_heatmap_reason}); import it instead "
                "(manage.py import_model), which accepts models without one."
            )
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
            kind=ModelVersion.Kind.MALIGNANCY,
            runtime=ModelVersion.Runtime.KERAS,
            imported_by=actor,
            imported_via=registered_by,
            conformance={"heatmap": True, "heatmap_method": "Grad-CAM", "checked_by": "registration (zeros in)"},
        )
        model_status_record_created(
            model_version=version,
            actor=actor,
            actor_name=registered_by,
            reason=f"Registered by {registered_by}: it loads and gives one probability and a Grad-CAM map per image.",
        )
        audit_record(
            action="model.registered",
            actor=actor,
            obj=version,
            details={
                "name": name, "kind": version.kind, "backbone": backbone, "file_sha256": sha,
                "threshold": threshold, "by": registered_by,
            },
        )  # fmt: skip
        if activate:
            who = confirmed_by or registered_by
            model_version_accept_for_research(model_version=version, accepted_by=who, actor=actor)
            model_version_activate(
                model_version=version, confirm_unvalidated=confirm_unvalidated, confirmed_by=who, actor=actor
            )
    return version


def model_version_register_from_card(
    *,
    model_path: Path,
    card: dict,
    name: str | None = None,
    activate: bool = False,
    confirm_unvalidated: bool = False,
    registered_by: str = "register_model",
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
        confirmed_by=registered_by,
        registered_by=registered_by,
    )


__all__ = ["model_version_activate", "model_version_register", "model_version_register_from_card"]
