"""The EfficientNet classifier builder. TensorFlow is imported inside functions so that importing this module
(e.g. from Django's app loading in a process that later forks) does not start TensorFlow."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Backbone:
    key: str
    keras_name: str
    default_input_size: int


# Input sizes: Keras' native sizes are 224/260/300, too coarse for calcifications on a whole mammogram; these keep
# the same ratios at roughly twice the resolution.
BACKBONES: dict[str, Backbone] = {
    "b0": Backbone("b0", "EfficientNetB0", 512),
    "b2": Backbone("b2", "EfficientNetB2", 576),
    "b3": Backbone("b3", "EfficientNetB3", 640),
}

LOGIT_LAYER = "logit"
OUTPUT_LAYER = "probability"


def backbone_get(key: str) -> Backbone:
    try:
        return BACKBONES[key.lower()]
    except KeyError:
        raise ValueError(f"Unknown backbone {key!r}; choose one of: {', '.join(BACKBONES)}.") from None


def build_classifier(*, backbone: str, input_size: int | None = None, weights: str | Path | None = None, dropout: float = 0.3):
    """EfficientNet body + global average pooling + dropout + one logit + sigmoid.

    The body's layers sit directly in the returned model (not nested), so Grad-CAM can reach the last
    convolutional activation. `weights`: None (random) or a local Keras weights file for the body (no download).
    """
    import keras

    spec = backbone_get(backbone)
    size = input_size or spec.default_input_size
    inputs = keras.Input(shape=(size, size, 3), name="image")
    constructor = getattr(keras.applications, spec.keras_name)
    body = constructor(include_top=False, weights=None, input_tensor=inputs)
    if weights is not None:
        body.load_weights(str(weights))
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(body.output)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    logit = keras.layers.Dense(1, name=LOGIT_LAYER)(x)
    probability = keras.layers.Activation("sigmoid", name=OUTPUT_LAYER, dtype="float32")(logit)
    return keras.Model(inputs, probability, name=f"efficientnet_{spec.key}_classifier")
