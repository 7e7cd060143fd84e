"""Grad-CAM for any loaded classifier: the last convolutional activation is found, not hard-coded.

For the 'location' head (inference.serving.backbones: a logit at every feature-map position, the image's logit their
maximum) the heatmap is that logit map itself (CAM, Zhou et al. 2016). Grad-CAM of a max over positions has a
gradient at one position only and reduces to ReLU(location logit - bias): the same peak whenever it is positive,
and an empty map when it is not; the logit map keeps the peak and the ranking of the other regions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from inference.serving.backbones import HEAD_LAYERS, LOCATION_LAYER, LOGIT_LAYER


class UnsupportedModel(Exception):
    pass


def last_conv_layer(model) -> Any:
    """The last layer whose output is a 4-D feature map (batch, rows, cols, channels)."""
    for layer in reversed(model.layers):
        if layer.name in HEAD_LAYERS:
            continue
        if hasattr(layer, "layers") and layer.__class__.__name__ in ("Functional", "Model", "Sequential"):
            raise UnsupportedModel(
                f"Layer {layer.name!r} is a nested model; rebuild the classifier flat (inference.serving.backbones)."
            )
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):
            continue
        if len(shape) == 4:
            return layer
    raise UnsupportedModel("The model has no convolutional feature map for Grad-CAM.")


def _logit_tensor(model):
    try:
        return model.get_layer(LOGIT_LAYER).output
    except ValueError:
        return None


@dataclass
class CamModel:
    """A model plus its Grad-CAM graph, built once per loaded model and reused for every image."""

    run: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # batch -> (logits (n,), cams (n, h, w) in [0, 1])
    conv_layer_name: str
    cam_shape: tuple[int, int]
    # For a model whose output is a probability: batch -> (logits, cams, the probabilities exactly as it gave them).
    run_with_output: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None


def _location_layer(model):
    try:
        return model.get_layer(LOCATION_LAYER)
    except ValueError:
        return None


def cam_model_build(model, *, output_index: int = 0, output_is_logit: bool | None = None) -> CamModel:
    """`output_index`: which value of the model's output vector is the score (0 for the platform's one-unit heads);
    `output_is_logit`: whether the output is a logit, None to tell from the model (a layer named LOGIT_LAYER: its
    logit; otherwise the output is taken as a probability)."""
    import keras
    import tensorflow as tf

    location = _location_layer(model)
    if location is not None:
        return _location_cam_build(model, location)
    conv_layer = last_conv_layer(model)
    logit = _logit_tensor(model) if output_is_logit is None else None
    outputs = [conv_layer.output, logit if logit is not None else model.output]
    grad_model = keras.Model(model.inputs, outputs)
    from_probability = (logit is None) if output_is_logit is None else not output_is_logit

    @tf.function(reduce_retracing=True)
    def run(batch):
        with tf.GradientTape() as tape:
            features, score = grad_model(batch, training=False)
            score = tf.reshape(score, [tf.shape(score)[0], -1])[:, output_index]
            output = score
            if from_probability:
                p = tf.clip_by_value(score, 1e-7, 1 - 1e-7)
                score = tf.math.log(p) - tf.math.log1p(-p)
        grads = tape.gradient(score, features)
        weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1))
        peak = tf.reduce_max(cam, axis=(1, 2), keepdims=True)
        cam = tf.math.divide_no_nan(cam, peak)
        return score, cam, output

    def call(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        score, cam, _ = run(tf.convert_to_tensor(batch, dtype=tf.float32))
        return score.numpy().astype(np.float64), cam.numpy()

    def call_with_output(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        score, cam, output = run(tf.convert_to_tensor(batch, dtype=tf.float32))
        return score.numpy().astype(np.float64), cam.numpy(), output.numpy().astype(np.float64)

    shape = conv_layer.output.shape
    return CamModel(
        run=call,
        conv_layer_name=conv_layer.name,
        cam_shape=(int(shape[1]), int(shape[2])),
        run_with_output=call_with_output if from_probability else None,
    )


def _location_cam_build(model, location) -> CamModel:
    import keras
    import tensorflow as tf

    maps_model = keras.Model(model.inputs, [location.output, model.get_layer(LOGIT_LAYER).output])

    @tf.function(reduce_retracing=True)
    def run(batch):
        maps, score = maps_model(batch, training=False)
        maps = maps[..., 0]
        low = tf.reduce_min(maps, axis=(1, 2), keepdims=True)
        high = tf.reduce_max(maps, axis=(1, 2), keepdims=True)
        return tf.reshape(score, [-1]), tf.math.divide_no_nan(maps - low, high - low)

    def call(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        score, cam = run(tf.convert_to_tensor(batch, dtype=tf.float32))
        return score.numpy().astype(np.float64), cam.numpy()

    shape = location.output.shape
    return CamModel(run=call, conv_layer_name=location.name, cam_shape=(int(shape[1]), int(shape[2])))
