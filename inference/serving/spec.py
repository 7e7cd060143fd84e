"""What serving needs to know about a model, from wherever it is recorded.

A model card's "serving" block (written by training, shipped in default_model/) and a ModelVersion row (the
registry) describe the same thing; both become a ServingSpec here, and only here, so the worker, registration and
evaluation load the same network the same way (inference.serving.runtime.serving_model_load).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from inference.serving.backbones import POOLINGS
from inference.serving.networks import InputSpec, OutputSpec
from inference.serving.preprocessing import PREPROCESSING_VERSION


@dataclass(frozen=True)
class ServingSpec:
    model_path: Path
    backbone: str
    input_size: int
    pooling: str = "avg"  # the head a weights-only .h5 is loaded into (inference.serving.backbones.POOLINGS)
    threshold: float = 0.5
    calibration_scale: float = 1.0
    calibration_bias: float = 0.0
    preprocessing_version: str = PREPROCESSING_VERSION
    runtime: str = "keras"
    # An imported model's manifest (inference.imports.manifest): its input and output; empty for the platform's
    # own models (square 3-channel input in [0, 255], one logit or probability out).
    manifest: dict | None = None

    @property
    def input_spec(self) -> InputSpec:
        return InputSpec.from_manifest(self.manifest, default_size=self.input_size)

    @property
    def output(self) -> OutputSpec | None:
        return OutputSpec.from_manifest(self.manifest)

    @classmethod
    def from_card(cls, model_path: Path, card: dict) -> ServingSpec:
        """From a model card (its "serving" block; the "training" block fills gaps of older cards)."""
        serving = card.get("serving") or {}
        training = card.get("training") or {}
        input_size = serving.get("input_size") or training.get("image_size")
        if not input_size:
            raise ValueError("The model card gives no input size (serving.input_size).")
        return cls(
            model_path=Path(model_path),
            backbone=serving.get("backbone") or card.get("backbone") or training.get("backbone") or "b0",
            input_size=int(input_size),
            pooling=card_pooling(card),
            threshold=float(serving.get("threshold", 0.5)),
            calibration_scale=float(serving.get("calibration_scale", 1.0)),
            calibration_bias=float(serving.get("calibration_bias", 0.0)),
            preprocessing_version=str(serving.get("preprocessing_version") or PREPROCESSING_VERSION),
        )

    @classmethod
    def from_version(cls, version) -> ServingSpec:
        """From a registered ModelVersion (its file lives in MODEL_DIR)."""
        return cls(
            model_path=model_file_path(version),
            backbone=version.backbone,
            input_size=version.input_size,
            pooling=card_pooling(version.card),
            threshold=version.threshold,
            calibration_scale=version.calibration_scale,
            calibration_bias=version.calibration_bias,
            preprocessing_version=version.preprocessing_version,
            runtime=version.runtime,
            manifest=version.manifest or None,
        )


def card_pooling(card: dict | None) -> str:
    """The head a model card records for serving, default 'avg'."""
    card = card or {}
    pooling = (card.get("serving") or {}).get("pooling") or (card.get("training") or {}).get("pooling")
    return pooling if pooling in POOLINGS else "avg"


def model_file_path(version) -> Path:
    from django.conf import settings

    path = Path(version.file)
    return path if path.is_absolute() else Path(settings.MODEL_DIR) / path
