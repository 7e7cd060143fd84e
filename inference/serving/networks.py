"""One runtime abstraction for malignancy models: Keras, TensorFlow SavedModel and ONNX (ONNX Runtime on CPU).

Every network takes the platform's preprocessed batch (inference.serving.preprocessing: n x S x S x 3, values in
[0, 255]), turns it into the input its manifest declares (InputSpec: channels, layout, normalisation, bit depth)
and gives back, per image, the raw probability, the logit and a heatmap where the runtime can make one:

- Keras: Grad-CAM on the last convolutional feature map (inference.serving.gradcam), as before. A Keras model
  without a flat convolutional feature map (a nested base model, a network of dense layers) runs without one.
- SavedModel and ONNX: no heatmap. Their serving signature or graph exposes the output only: no intermediate
  feature map to take gradients against. An occlusion map would cost one forward pass per occluded patch (64 for an
  8 x 8 grid: over a minute per image for an EfficientNet-sized model on these CPUs), so it is not made; the
  prediction then has no heatmap and everything downstream says so (docs/adr/0005-bring-your-own-model.md).

Loading is safe: Keras with safe_mode (no Lambda layer, no custom object); a SavedModel and an ONNX file are
inspected before their runtime gets them (inference.serving.model_safety) and a SavedModel's serving signature is
the only thing ever called.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from inference.serving.loading import ModelLoadError
from inference.serving.model_safety import onnx_model_checked, savedmodel_refused_ops

NORMALISATIONS = {
    "0-255": "values 0 to 255 (the platform's; Keras EfficientNet models rescale inside)",
    "0-1": "values 0 to 1",
    "-1-1": "values -1 to 1",
    "imagenet": "0 to 1, then ImageNet mean and standard deviation per channel (PyTorch's usual)",
}
LAYOUTS = ("NHWC", "NCHW")
ACTIVATIONS = ("probability", "logit")
_IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
_EPS = 1e-7


@dataclass(frozen=True)
class InputSpec:
    """The input a network expects, from the platform's preprocessed square image."""

    size: int
    channels: int = 3
    layout: str = "NHWC"
    normalisation: str = "0-255"
    bit_depth: int = 16  # 8: the image is quantised to 256 grey levels first (what an 8-bit-trained model saw)

    @classmethod
    def from_manifest(cls, manifest: dict | None, *, default_size: int) -> InputSpec:
        spec = (manifest or {}).get("input") or {}
        return cls(
            size=int(spec.get("size") or default_size),
            channels=int(spec.get("channels") or 3),
            layout=str(spec.get("layout") or "NHWC"),
            normalisation=str(spec.get("normalisation") or "0-255"),
            bit_depth=int(spec.get("bit_depth") or 16),
        )

    def shape(self, batch: int | None = 1) -> tuple:
        if self.layout == "NCHW":
            return (batch, self.channels, self.size, self.size)
        return (batch, self.size, self.size, self.channels)


@dataclass(frozen=True)
class OutputSpec:
    """Where the score is in the network's output, and what it is."""

    index: int = 0  # position of the score in the output vector (e.g. 1 for softmax [benign, malignant])
    name: str = ""  # the output's name (ONNX, SavedModel); "" for the only (or first) one
    activation: str = "probability"  # 'probability' (in [0, 1]) or 'logit' (any real; the platform applies sigmoid)
    unit: str = "image"  # 'image' or 'breast': what the probability is of (a breast's score is the max of its views)

    @classmethod
    def from_manifest(cls, manifest: dict | None) -> OutputSpec | None:
        spec = (manifest or {}).get("output")
        if not spec:
            return None
        return cls(
            index=int(spec.get("index") or 0),
            name=str(spec.get("name") or ""),
            activation=str(spec.get("activation") or "probability"),
            unit=str(spec.get("unit") or "image"),
        )


def network_input(batch: np.ndarray, spec: InputSpec) -> np.ndarray:
    """The platform's preprocessed batch (n, S, S, 3) in [0, 255] as the network's declared input."""
    x = np.asarray(batch, dtype=np.float32)
    if spec.bit_depth == 8:
        x = np.round(x)  # 256 grey levels: the tensor is already on a 0-255 scale
    if spec.channels == 1:
        x = x[..., :1]
    if spec.normalisation == "0-1":
        x = x / 255.0
    elif spec.normalisation == "-1-1":
        x = x / 127.5 - 1.0
    elif spec.normalisation == "imagenet":
        mean = _IMAGENET_MEAN[: spec.channels] if spec.channels == 3 else _IMAGENET_MEAN.mean(keepdims=True)
        std = _IMAGENET_STD[: spec.channels] if spec.channels == 3 else _IMAGENET_STD.mean(keepdims=True)
        x = (x / 255.0 - mean) / std
    if spec.layout == "NCHW":
        x = np.transpose(x, (0, 3, 1, 2))
    return np.ascontiguousarray(x, dtype=np.float32)


@dataclass
class NetworkOutput:
    raw_probability: np.ndarray  # (n,) float64: the network's own probability (sigmoid of its logit)
    logit: np.ndarray  # (n,) float64
    cams: np.ndarray | None  # (n, h, w) in [0, 1], or None when this network gives no heatmap


class Network(Protocol):
    runtime: str
    heatmap_method: str  # 'Grad-CAM', 'CAM' or '' (no heatmap)
    input_spec: InputSpec

    def run(self, batch: np.ndarray) -> NetworkOutput: ...


def _from_scores(scores: np.ndarray, activation: str) -> tuple[np.ndarray, np.ndarray]:
    """(raw probability, logit) from what the network gave."""
    scores = np.asarray(scores, dtype=np.float64)
    if activation == "logit":
        return 1.0 / (1.0 + np.exp(-np.clip(scores, -60, 60))), scores
    clipped = np.clip(scores, _EPS, 1 - _EPS)
    return scores, np.log(clipped) - np.log1p(-clipped)


def _pick(output: np.ndarray, index: int) -> tuple[np.ndarray, int]:
    """(the score of each image, how many values the output has per image)."""
    values = np.asarray(output)
    values = values.reshape(values.shape[0], -1) if values.ndim > 1 else values.reshape(-1, 1)
    if index >= values.shape[1]:
        raise ModelLoadError(
            f"The model gives {values.shape[1]} value(s) per image; the manifest names output index {index}."
        )
    return values[:, index], int(values.shape[1])


# --- Keras ------------------------------------------------------------------------------------------------------


class KerasNetwork:
    runtime = "keras"

    def __init__(self, model, *, input_spec: InputSpec, output: OutputSpec | None) -> None:
        from inference.serving.gradcam import UnsupportedModel, cam_model_build

        self.input_spec = input_spec
        self.model = model
        self.output = output
        self.heatmap_method = ""
        self.no_heatmap_reason = ""
        self.cam = None
        if isinstance(model.output, list | tuple) and len(model.output) != 1:
            raise ModelLoadError(f"The model has {len(model.output)} outputs; the platform reads one.")
        self.last_values_per_image = int(np.prod([d or 1 for d in model.output.shape[1:]]))
        try:
            if output is None:
                self.cam = cam_model_build(model)  # the platform's own models: their logit layer tells
            else:
                self.cam = cam_model_build(
                    model, output_index=output.index, output_is_logit=output.activation == "logit"
                )
            self.heatmap_method = "CAM" if self.cam.conv_layer_name == "location" else "Grad-CAM"
        except UnsupportedModel as exc:
            self.no_heatmap_reason = str(exc)
        self._lock = threading.Lock()

    def run(self, batch: np.ndarray) -> NetworkOutput:
        x = network_input(batch, self.input_spec)
        if self.cam is not None and self.output is not None and self.cam.run_with_output is not None:
            # An imported model with a probability output: its probability exactly as it gave it.
            logits, cams, raw = self.cam.run_with_output(x)
            return NetworkOutput(raw_probability=raw, logit=np.asarray(logits, dtype=np.float64), cams=cams)
        if self.cam is not None:
            logits, cams = self.cam.run(x)
            logits = np.asarray(logits, dtype=np.float64)
            raw = 1.0 / (1.0 + np.exp(-np.clip(logits, -60, 60)))
            return NetworkOutput(raw_probability=raw, logit=logits, cams=cams)
        with self._lock:
            scores, self.last_values_per_image = _pick(
                np.asarray(self.model(x, training=False)), self.output.index if self.output else 0
            )
        raw, logit = _from_scores(scores, self.output.activation if self.output else "probability")
        return NetworkOutput(raw_probability=raw, logit=logit, cams=None)


# --- TensorFlow SavedModel ---------------------------------------------------------------------------------------


class SavedModelNetwork:
    runtime = "savedmodel"
    heatmap_method = ""
    no_heatmap_reason = "a SavedModel's serving signature exposes no feature map to take gradients against"

    def __init__(self, folder: Path, *, input_spec: InputSpec, output: OutputSpec | None) -> None:
        import tensorflow as tf

        refused = savedmodel_refused_ops(folder)
        if refused:
            raise ModelLoadError(f"The SavedModel holds ops the platform does not run: {', '.join(sorted(refused))}.")
        try:
            loaded = tf.saved_model.load(str(folder))
        except Exception as exc:  # noqa: BLE001
            raise ModelLoadError(f"The SavedModel could not be loaded: {exc}") from exc
        if "serving_default" not in loaded.signatures:
            raise ModelLoadError("The SavedModel has no 'serving_default' signature (the only one the platform calls).")
        self._keep = loaded  # the signature's variables live as long as the loaded object
        self.signature = loaded.signatures["serving_default"]
        inputs = self.signature.structured_input_signature[1]
        if len(inputs) != 1:
            raise ModelLoadError(f"The serving signature takes {len(inputs)} inputs; the platform gives one image.")
        self.input_name = next(iter(inputs))
        outputs = list(self.signature.structured_outputs)
        self.output = output or OutputSpec()
        if self.output.name:
            if self.output.name not in outputs:
                raise ModelLoadError(f"The serving signature has no output {self.output.name!r} (it has {outputs}).")
            self.output_name = self.output.name
        elif len(outputs) == 1:
            self.output_name = outputs[0]
        else:
            raise ModelLoadError(f"The serving signature has outputs {outputs}: name one in the manifest.")
        self.input_spec = input_spec
        self._lock = threading.Lock()

    def run(self, batch: np.ndarray) -> NetworkOutput:
        import tensorflow as tf

        x = network_input(batch, self.input_spec)
        values = []
        with self._lock:
            for i in range(x.shape[0]):
                result = self.signature(**{self.input_name: tf.constant(x[i : i + 1])})
                score, self.last_values_per_image = _pick(result[self.output_name].numpy(), self.output.index)
                values.append(score)
        raw, logit = _from_scores(np.concatenate(values), self.output.activation)
        return NetworkOutput(raw_probability=raw, logit=logit, cams=None)


# --- ONNX --------------------------------------------------------------------------------------------------------


class OnnxNetwork:
    runtime = "onnx"
    heatmap_method = ""
    no_heatmap_reason = "ONNX Runtime computes no gradients"

    def __init__(self, path: Path, *, input_spec: InputSpec, output: OutputSpec | None) -> None:
        import onnxruntime as ort

        model = onnx_model_checked(path)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # noqa: BLE001
            raise ModelLoadError(f"ONNX Runtime cannot run the model: {exc}") from exc
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ModelLoadError(f"The ONNX model takes {len(inputs)} inputs; the platform gives one image.")
        self.input_name = inputs[0].name
        self.declared_input_shape = list(inputs[0].shape)
        outputs = [o.name for o in self.session.get_outputs()]
        self.output = output or OutputSpec()
        if self.output.name and self.output.name not in outputs:
            raise ModelLoadError(f"The ONNX model has no output {self.output.name!r} (it has {outputs}).")
        self.output_name = self.output.name or outputs[0]
        self.input_spec = input_spec

    def run(self, batch: np.ndarray) -> NetworkOutput:
        x = network_input(batch, self.input_spec)
        values = []
        for i in range(x.shape[0]):
            output = self.session.run([self.output_name], {self.input_name: x[i : i + 1]})[0]
            score, self.last_values_per_image = _pick(output, self.output.index)
            values.append(score)
        raw, logit = _from_scores(np.concatenate(values), self.output.activation)
        return NetworkOutput(raw_probability=raw, logit=logit, cams=None)


def network_load(
    path: Path, *, runtime: str, input_spec: InputSpec, output: OutputSpec | None, backbone: str = "", pooling="avg"
) -> Network:
    """The network for a model file of the given runtime (the worker, registration, import and evaluation all load
    through here, by way of inference.serving.runtime.serving_model_load)."""
    if runtime == "onnx":
        return OnnxNetwork(Path(path), input_spec=input_spec, output=output)
    if runtime == "savedmodel":
        return SavedModelNetwork(Path(path), input_spec=input_spec, output=output)
    if runtime == "keras":
        from inference.serving.loading import load_classifier

        model = load_classifier(Path(path), backbone=backbone, input_size=input_spec.size, pooling=pooling)
        return KerasNetwork(model, input_spec=input_spec, output=output)
    raise ModelLoadError(f"Unknown runtime {runtime!r} for a malignancy model.")
