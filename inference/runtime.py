"""The model inside a worker process: loaded once, called directly (no `model.predict` per image)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.conf import settings

from inference.calibration import calibrated_probability
from inference.gradcam import CamModel, cam_model_build
from inference.loading import ModelLoadError, card_pooling, load_classifier
from inference.preprocessing import PREPROCESSING_VERSION, Geometry, preprocess


@dataclass
class LoadedModel:
    version_id: int
    file_sha256: str
    input_size: int
    threshold: float
    calibration_scale: float
    calibration_bias: float
    cam: CamModel


@dataclass
class Analysis:
    logit: float
    raw_probability: float
    probability: float
    label: str
    cam: np.ndarray  # at the network's feature-map resolution, in [0, 1]
    geometry: Geometry
    timings_ms: dict[str, float] = field(default_factory=dict)


_lock = threading.Lock()
_loaded: LoadedModel | None = None  # one model per process: a second one would double the memory


def model_path(version) -> Path:
    path = Path(version.file)
    return path if path.is_absolute() else Path(settings.MODEL_DIR) / path


def loaded_model_get(version) -> LoadedModel:
    """The loaded model for a ModelVersion, loading it (and dropping any other) on first use in this process."""
    global _loaded
    with _lock:
        if _loaded is not None and _loaded.version_id == version.pk and _loaded.file_sha256 == version.file_sha256:
            return _loaded
        if version.preprocessing_version != PREPROCESSING_VERSION:
            raise ModelLoadError(
                f"Model {version.name} was trained with preprocessing version {version.preprocessing_version}, "
                f"this platform serves version {PREPROCESSING_VERSION}."
            )
        _loaded = None
        model = load_classifier(
            model_path(version),
            backbone=version.backbone,
            input_size=version.input_size,
            pooling=card_pooling(version.card),
        )
        cam = cam_model_build(model)
        # Trace the graph now so the first image does not pay for it.
        cam.run(np.zeros((1, version.input_size, version.input_size, 3), dtype=np.float32))
        _loaded = LoadedModel(
            version_id=version.pk,
            file_sha256=version.file_sha256,
            input_size=version.input_size,
            threshold=version.threshold,
            calibration_scale=version.calibration_scale,
            calibration_bias=version.calibration_bias,
            cam=cam,
        )
        return _loaded


def analyse(pixels: np.ndarray, loaded: LoadedModel) -> Analysis:
    """Preprocess, forward pass and Grad-CAM for one decoded image."""
    started = time.perf_counter()
    prepared = preprocess(pixels, input_size=loaded.input_size)
    after_preprocess = time.perf_counter()
    logits, cams = loaded.cam.run(prepared.tensor[None, ...])
    after_model = time.perf_counter()
    logit = float(logits[0])
    raw = float(calibrated_probability(logit, scale=1.0, bias=0.0))
    probability = float(calibrated_probability(logit, scale=loaded.calibration_scale, bias=loaded.calibration_bias))
    return Analysis(
        logit=logit,
        raw_probability=raw,
        probability=probability,
        label="malignant" if probability >= loaded.threshold else "benign",
        cam=cams[0],
        geometry=prepared.geometry,
        timings_ms={
            "preprocess_ms": round((after_preprocess - started) * 1000, 1),
            "model_and_gradcam_ms": round((after_model - after_preprocess) * 1000, 1),
        },
    )
