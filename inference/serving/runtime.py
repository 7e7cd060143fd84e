"""The model inside a worker process: loaded once, called directly (no `model.predict` per image)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from inference.serving import loading
from inference.serving.calibration import calibrated_probability
from inference.serving.gradcam import CamModel, cam_model_build
from inference.serving.loading import ModelLoadError, load_classifier
from inference.serving.preprocessing import PREPROCESSING_VERSION, Geometry, preprocess
from inference.serving.spec import ServingSpec


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


def serving_model_load(spec: ServingSpec, *, version_id: int = 0, file_sha256: str | None = None) -> LoadedModel:
    """Load a model for serving: the network (inference.serving.loading), its Grad-CAM function, traced once so the
    first image does not pay for it. The worker, registration and evaluation all load through here."""
    if spec.preprocessing_version != PREPROCESSING_VERSION:
        raise ModelLoadError(
            f"The model was trained with preprocessing version {spec.preprocessing_version}; this platform serves "
            f"version {PREPROCESSING_VERSION}."
        )
    model = load_classifier(spec.model_path, backbone=spec.backbone, input_size=spec.input_size, pooling=spec.pooling)
    cam = cam_model_build(model)
    cam.run(np.zeros((1, spec.input_size, spec.input_size, 3), dtype=np.float32))
    return LoadedModel(
        version_id=version_id,
        file_sha256=file_sha256 or loading.file_sha256(spec.model_path),
        input_size=spec.input_size,
        threshold=spec.threshold,
        calibration_scale=spec.calibration_scale,
        calibration_bias=spec.calibration_bias,
        cam=cam,
    )


def loaded_model_get(version) -> LoadedModel:
    """The loaded model for a ModelVersion, loading it (and dropping any other) on first use in this process."""
    global _loaded
    with _lock:
        if _loaded is not None and _loaded.version_id == version.pk and _loaded.file_sha256 == version.file_sha256:
            return _loaded
        _loaded = None
        _loaded = serving_model_load(
            ServingSpec.from_version(version), version_id=version.pk, file_sha256=version.file_sha256
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
