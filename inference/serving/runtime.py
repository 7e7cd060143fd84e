"""The model inside a worker process: loaded once, called directly (no `model.predict` per image), whatever its
runtime (inference.serving.networks: Keras, SavedModel, ONNX)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from inference.serving import loading
from inference.serving.calibration import calibrated_probability
from inference.serving.loading import ModelLoadError
from inference.serving.networks import Network, network_load
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
    network: Network

    @property
    def gives_heatmap(self) -> bool:
        return bool(self.network.heatmap_method)


@dataclass
class Analysis:
    logit: float
    raw_probability: float
    probability: float
    label: str
    cam: np.ndarray | None  # at the network's feature-map resolution, in [0, 1]; None: the model gives no heatmap
    geometry: Geometry
    timings_ms: dict[str, float] = field(default_factory=dict)


_lock = threading.Lock()
_loaded: LoadedModel | None = None  # one model per process: a second one would double the memory


def serving_model_load(
    spec: ServingSpec, *, version_id: int = 0, file_sha256: str | None = None, warm_up: bool = True
) -> LoadedModel:
    """Load a model for serving: the network of its runtime (inference.serving.networks) with, for Keras, its
    Grad-CAM function, run once on zeros so the first image does not pay for tracing. The worker, registration,
    import and evaluation all load through here."""
    if spec.preprocessing_version != PREPROCESSING_VERSION:
        raise ModelLoadError(
            f"The model was trained with preprocessing version {spec.preprocessing_version}; this platform serves "
            f"version {PREPROCESSING_VERSION}."
        )
    network = network_load(
        spec.model_path,
        runtime=spec.runtime,
        input_spec=spec.input_spec,
        output=spec.output,
        backbone=spec.backbone,
        pooling=spec.pooling,
    )
    if warm_up:
        network.run(np.zeros((1, spec.input_size, spec.input_size, 3), dtype=np.float32))
    return LoadedModel(
        version_id=version_id,
        file_sha256=file_sha256 or loading.file_sha256(spec.model_path),
        input_size=spec.input_size,
        threshold=spec.threshold,
        calibration_scale=spec.calibration_scale,
        calibration_bias=spec.calibration_bias,
        network=network,
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
    """Preprocess, forward pass and (where the runtime makes one) the heatmap for one decoded image.

    raw_probability is the network's own probability (for a network that outputs one, exactly its value); the
    calibrated probability is sigmoid(scale * logit + bias), which is the raw probability itself when the
    calibration is the identity (so an imported model's score is exactly what its own runtime gives)."""
    started = time.perf_counter()
    prepared = preprocess(pixels, input_size=loaded.input_size)
    after_preprocess = time.perf_counter()
    out = loaded.network.run(prepared.tensor[None, ...])
    after_model = time.perf_counter()
    logit = float(out.logit[0])
    raw = float(out.raw_probability[0])
    identity = loaded.calibration_scale == 1.0 and loaded.calibration_bias == 0.0
    probability = (
        raw
        if identity
        else float(calibrated_probability(logit, scale=loaded.calibration_scale, bias=loaded.calibration_bias))
    )
    model_key = "model_and_gradcam_ms" if out.cams is not None else "model_ms"
    return Analysis(
        logit=logit,
        raw_probability=raw,
        probability=probability,
        label="malignant" if probability >= loaded.threshold else "benign",
        cam=out.cams[0] if out.cams is not None else None,
        geometry=prepared.geometry,
        timings_ms={
            "preprocess_ms": round((after_preprocess - started) * 1000, 1),
            model_key: round((after_model - after_preprocess) * 1000, 1),
        },
    )
