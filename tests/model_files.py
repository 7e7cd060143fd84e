"""Small real model files for the import tests, built here with each runtime's own API: ONNX with the `onnx` helper
API, Keras, and a TensorFlow SavedModel; plus the files an import must refuse (custom operators, weights outside
the file, code in a Keras file, file reads in a SavedModel, outputs out of range or different on every run)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

SIZE = 64


def manifest(name: str, *, size: int = SIZE, channels: int = 1, layout: str = "NCHW", normalisation: str = "0-1",
             activation: str = "probability", index: int = 0, threshold: float = 0.5) -> dict:  # fmt: skip
    return {
        "name": name,
        "version": "1.0.0",
        "vendor": "Test vendor",
        "licence": "MIT (test)",
        "intended_use": "A test of the import path; not for patients.",
        "kind": "malignancy",
        "input": {"views": ["CC", "MLO"], "size": size, "channels": channels, "layout": layout,
                  "normalisation": normalisation, "bit_depth": 16},
        "output": {"unit": "image", "index": index, "activation": activation},
        "operating_points": [{"name": "default", "threshold": threshold, "sensitivity": 0.8, "specificity": 0.7}],
        "training_data": "None: weights set by hand.",
        "validation": {"summary": "None published.", "auc": 0.5, "auc_ci95": [0.4, 0.6], "dataset": "none"},
    }  # fmt: skip


def onnx_scorer(path: Path, *, size: int = SIZE, weight: float = 6.0, bias: float = -2.0, sigmoid: bool = True,
                two_outputs: bool = False, opset: int = 17) -> Path:  # fmt: skip
    """A small ONNX classifier: (1, 1, S, S) in [0, 1] -> 2x2 average pooling -> a 3x3 convolution -> ReLU ->
    global average -> one unit -> sigmoid, so its score depends on the image's brightness and texture.
    two_outputs: softmax over [benign, malignant] (the score is index 1)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(3)
    kernel = rng.normal(0, 0.5, size=(4, 1, 3, 3)).astype(np.float32)
    dense = np.full((4, 1), weight / 4, dtype=np.float32)
    initializers = [
        numpy_helper.from_array(kernel, "kernel"),
        numpy_helper.from_array(np.zeros(4, np.float32), "kernel_bias"),
        numpy_helper.from_array(dense, "dense"),
        numpy_helper.from_array(np.array([bias], np.float32), "dense_bias"),
    ]
    nodes = [
        helper.make_node("AveragePool", ["image"], ["pooled"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["pooled", "kernel", "kernel_bias"], ["features"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["features"], ["activated"]),
        helper.make_node("GlobalAveragePool", ["activated"], ["summary"]),
        helper.make_node("Flatten", ["summary"], ["flat"]),
        helper.make_node("Gemm", ["flat", "dense", "dense_bias"], ["logit"]),
    ]
    if two_outputs:
        initializers.append(numpy_helper.from_array(np.array([[-1.0, 1.0]], np.float32), "spread"))
        nodes += [
            helper.make_node("MatMul", ["logit", "spread"], ["pair"]),
            helper.make_node("Softmax", ["pair"], ["score"], axis=1),
        ]
        out_shape = [1, 2]
    elif sigmoid:
        nodes.append(helper.make_node("Sigmoid", ["logit"], ["score"]))
        out_shape = [1, 1]
    else:
        nodes.append(helper.make_node("Identity", ["logit"], ["score"]))
        out_shape = [1, 1]
    graph = helper.make_graph(
        nodes, "scorer",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, size, size])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, out_shape)],
        initializer=initializers,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


def onnx_with_custom_op(path: Path, *, size: int = SIZE) -> Path:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["image"], ["mean"], keepdims=0),
         helper.make_node("Steal", ["mean"], ["score"], domain="com.example.evil")],
        "custom",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, size, size])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, [1])],
    )  # fmt: skip
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example.evil", 1)]
    )
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def onnx_with_external_weights(path: Path, *, size: int = SIZE) -> Path:
    """A model whose weights point at a file outside itself (it could name any file on the machine)."""
    import onnx

    onnx_scorer(path, size=size)
    model = onnx.load(str(path))
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "../../../../etc/passwd"
    onnx.save(model, str(path))
    return path


def onnx_random(path: Path, *, size: int = SIZE) -> Path:
    """Standard operators, but a different answer every run (RandomUniformLike)."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["image"], ["mean"], axes=[1, 2, 3], keepdims=0),
         helper.make_node("RandomUniformLike", ["mean"], ["score"], low=0.0, high=1.0)],
        "random",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, size, size])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, [1])],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def keras_scorer(path: Path, *, size: int = SIZE) -> Path:
    """A small Keras CNN, 3 channels in [0, 1], NHWC, sigmoid out: a convolutional feature map, so Grad-CAM works."""
    import keras

    keras.utils.set_random_seed(11)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="score")(x)
    keras.Model(inputs, outputs).save(path)
    return path


def keras_with_lambda(path: Path, *, size: int = SIZE) -> Path:
    import keras

    inputs = keras.Input((size, size, 3))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(1, activation="sigmoid")(x)
    keras.Model(inputs, outputs).save(path)
    return path


def savedmodel_zip(path: Path, workdir: Path, *, size: int = SIZE, read_file: bool = False) -> Path:
    """A TensorFlow SavedModel (tf.Module with a serving signature) zipped as a folder. read_file: its function
    also reads a file (tf.io.read_file), which the import must refuse."""
    import tensorflow as tf

    class Scorer(tf.Module):
        def __init__(self):
            super().__init__()
            self.weight = tf.Variable(4.0)
            self.bias = tf.Variable(-1.0)

        @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32, name="image")])
        def serve(self, image):
            mean = tf.reduce_mean(image, axis=[1, 2, 3])
            if read_file:
                mean += tf.cast(tf.strings.length(tf.io.read_file("/etc/hostname")), tf.float32) * 0.0
            return {"probability": tf.sigmoid(self.weight * mean + self.bias)}

    module = Scorer()
    folder = workdir / "scorer"
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    with zipfile.ZipFile(path, "w") as archive:
        for file in folder.rglob("*"):
            archive.write(file, Path("scorer") / file.relative_to(folder))
    return path


def write_manifest(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data))
    return path
