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
    # EfficientNet-Lite0 (no squeeze-excitation, ReLU6): built here from plain Keras layers so that ImageNet
    # weights converted from the Apache-2.0 PyTorch release (research/pretrained/convert_lite0_weights.py) fit it.
    "lite0": Backbone("lite0", "EfficientNetLite0", 512),
}

LOGIT_LAYER = "logit"
OUTPUT_LAYER = "probability"
# 'location': the 'location' head below. Layers of that head come after the body's last feature map.
LOCATION_LAYER = "location_logits"
HEAD_LAYERS = ("head_dropout", LOCATION_LAYER)
POOLINGS = ("avg", "max", "location")

# EfficientNet-Lite0 stages: (repeats, kernel, stride, expand ratio, input filters, output filters).
_LITE0_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
_LITE_BN_EPSILON = 1e-3


def backbone_get(key: str) -> Backbone:
    try:
        return BACKBONES[key.lower()]
    except KeyError:
        raise ValueError(f"Unknown backbone {key!r}; choose one of: {', '.join(BACKBONES)}.") from None


def efficientnet_lite0_body(inputs):
    """EfficientNet-Lite0 without its top, on inputs in [0, 255]: returns the model from inputs to the last
    feature map ('top_activation', 1280 channels, stride 32). Layer order is fixed: converted weights depend on it.
    """
    import keras
    from keras import layers

    def conv_bn(x, filters, kernel, stride, name, activation=True):
        x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
        x = layers.BatchNormalization(epsilon=_LITE_BN_EPSILON, momentum=0.99, name=f"{name}_bn")(x)
        return layers.ReLU(6.0, name=f"{name}_activation")(x) if activation else x

    # Lite models normalise with mean 127 and standard deviation 128.
    x = layers.Rescaling(1.0 / 128.0, offset=-127.0 / 128.0, name="rescaling")(inputs)
    x = conv_bn(x, 32, 3, 2, "stem")
    for stage, (repeats, kernel, stride, expand, filters_in, filters_out) in enumerate(_LITE0_STAGES, start=1):
        for index in range(repeats):
            name = f"block{stage}{chr(ord('a') + index)}"
            block_in = x
            block_stride = stride if index == 0 else 1
            channels_in = filters_in if index == 0 else filters_out
            if expand != 1:
                x = conv_bn(x, channels_in * expand, 1, 1, f"{name}_expand")
            x = layers.DepthwiseConv2D(
                kernel, strides=block_stride, padding="same", use_bias=False, name=f"{name}_dwconv"
            )(x)
            x = layers.BatchNormalization(epsilon=_LITE_BN_EPSILON, momentum=0.99, name=f"{name}_bn")(x)
            x = layers.ReLU(6.0, name=f"{name}_activation")(x)
            x = conv_bn(x, filters_out, 1, 1, f"{name}_project", activation=False)
            if block_stride == 1 and channels_in == filters_out:
                x = layers.Add(name=f"{name}_add")([x, block_in])
    x = conv_bn(x, 1280, 1, 1, "top")
    return keras.Model(inputs, x, name="efficientnet_lite0_body")


def build_body(*, backbone: str, inputs):
    """The convolutional body of a backbone on `inputs` (no top), as a model whose layers are the caller's."""
    import keras

    spec = backbone_get(backbone)
    if spec.key == "lite0":
        return efficientnet_lite0_body(inputs)
    constructor = getattr(keras.applications, spec.keras_name)
    return constructor(include_top=False, weights=None, input_tensor=inputs)


def build_classifier(
    *,
    backbone: str,
    input_size: int | None = None,
    weights: str | Path | None = None,
    dropout: float = 0.3,
    pooling: str = "avg",
):
    """EfficientNet body + a head giving one logit (layer 'logit') + sigmoid.

    Heads (`pooling`):
    - 'avg' / 'max': global average / max pooling of the body's features, dropout, one Dense logit.
    - 'location': dropout, a 1 x 1 convolution giving a logit at every position of the feature map (layer
      'location_logits'), and the image's logit is their maximum. Made for a network trained on lesion patches
      and served on the whole image: a patch and a whole image are scored the same way (their most suspicious
      position decides), whereas max-pooling features *before* the Dense layer mixes the maxima of different
      positions — a 16 x 16 map's feature maxima are not a 4 x 4 patch's, so that head's patch training did not
      carry over to whole images (the failure of mini-mias-lite0-patch-v1, see its card).

    The body's layers sit directly in the returned model (not nested), so Grad-CAM can reach the last
    convolutional activation. `weights`: None (random) or a local Keras weights file for the body (no download).
    Every layer is size-independent, so weights move between input sizes.
    """
    import keras

    if pooling not in POOLINGS:
        raise ValueError(f"Unknown pooling {pooling!r}; choose one of: {', '.join(POOLINGS)}.")
    spec = backbone_get(backbone)
    size = input_size or spec.default_input_size
    inputs = keras.Input(shape=(size, size, 3), name="image")
    body = build_body(backbone=spec.key, inputs=inputs)
    if weights is not None:
        body.load_weights(str(weights))
    if pooling == "location":
        x = keras.layers.Dropout(dropout, name="head_dropout")(body.output)
        maps = keras.layers.Conv2D(1, 1, name=LOCATION_LAYER)(x)
        logit = keras.layers.GlobalMaxPooling2D(name=LOGIT_LAYER)(maps)
    else:
        if pooling == "max":
            x = keras.layers.GlobalMaxPooling2D(name="max_pool")(body.output)
        else:
            x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(body.output)
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
        logit = keras.layers.Dense(1, name=LOGIT_LAYER)(x)
    probability = keras.layers.Activation("sigmoid", name=OUTPUT_LAYER, dtype="float32")(logit)
    return keras.Model(inputs, probability, name=f"efficientnet_{spec.key}_classifier")
