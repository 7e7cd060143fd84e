"""Converting the published NYU histogram-model weights, once, into the small `weights.npz` the platform ships
(`manage.py convert_nyu_density_weights`). Never called when serving.

Two copies of the same weights are published in nyukat/breast_density_classifier (BSD-2-Clause):
- `model.ckpt.*`, the TensorFlow 1 checkpoint the model was trained into: read with `tf.train.load_checkpoint`
  (a table of named tensors; nothing in it runs code). The histogram network is `fully_connected` (200 -> 100,
  ReLU) and `fully_connected_2` (100 -> 4, softmax), as the reference's convert_model.py maps them; the checkpoint
  also holds an unused `fully_connected_1` (100 -> 3) and Adam slots, which are left out.
- `model.p`, the PyTorch state dict written by the reference's convert_model.py with torch 0.4's legacy
  `torch.save` format: several pickles, then the raw float32 storages. It is *not* a plain pickle of numpy arrays,
  and unpickling it normally would import and run whatever it names. `read_legacy_torch_state` reads it with a
  restricted unpickler that resolves exactly three names (an OrderedDict, torch's tensor-rebuild function and its
  FloatStorage marker) to inert local stand-ins and refuses every other global, so the file can only describe
  arrays. The conversion checks that both copies agree to the bit before writing anything.
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# npz key -> (checkpoint variable, torch state-dict key, transpose the torch copy)
WEIGHT_NAMES = {
    "hidden_kernel": ("fully_connected/weights", "fc1.weight", True),
    "hidden_bias": ("fully_connected/biases", "fc1.bias", False),
    "output_kernel": ("fully_connected_2/weights", "fc2.weight", True),
    "output_bias": ("fully_connected_2/biases", "fc2.bias", False),
}
WEIGHT_SHAPES = {"hidden_kernel": (200, 100), "hidden_bias": (100,), "output_kernel": (100, 4), "output_bias": (4,)}


def read_checkpoint_weights(checkpoint_prefix: Path) -> dict[str, np.ndarray]:
    """The four histogram-model tensors from the TensorFlow checkpoint (`.../model.ckpt`, without suffix)."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(checkpoint_prefix))
    weights = {key: np.asarray(reader.get_tensor(name), dtype=np.float32) for key, (name, _, _) in WEIGHT_NAMES.items()}
    check_shapes(weights)
    return weights


def check_shapes(weights: dict[str, np.ndarray]) -> None:
    for key, shape in WEIGHT_SHAPES.items():
        if key not in weights:
            raise ValueError(f"The weights lack {key}.")
        if weights[key].shape != shape or weights[key].dtype != np.float32:
            raise ValueError(f"{key} is {weights[key].dtype} {weights[key].shape}; float32 {shape} is expected.")


# ------------------------------------------------------------------ the legacy torch file, read without torch


@dataclass(frozen=True)
class _StorageRef:
    key: str
    elements: int


@dataclass(frozen=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage, offset, shape, stride, *_ignored) -> _TensorRef:
    return _TensorRef(storage, int(offset), tuple(int(s) for s in shape), tuple(int(s) for s in stride))


class _FloatStorageMarker:
    """Stands for torch.FloatStorage in a persistent id: only float32 storages are accepted."""


class _RestrictedUnpickler(pickle.Unpickler):
    ALLOWED = {
        ("collections", "OrderedDict"): OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch", "FloatStorage"): _FloatStorageMarker,
    }

    def find_class(self, module: str, name: str):
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a weights file.") from None

    def persistent_load(self, pid):
        # torch 0.4: ('storage', storage type, key, location, element count, view metadata)
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"Unexpected persistent id {pid!r}.")
        if pid[1] is not _FloatStorageMarker or pid[5] is not None:
            raise pickle.UnpicklingError("Only whole float32 storages are accepted.")
        return _StorageRef(str(pid[2]), int(pid[4]))


def _load_restricted(stream: io.BufferedIOBase):
    return _RestrictedUnpickler(stream).load()


def read_legacy_torch_state(path: Path) -> dict[str, np.ndarray]:
    """A torch 0.4 `torch.save(state_dict)` file -> {name: float32 array}, without torch and without running code."""
    stream = io.BytesIO(Path(path).read_bytes())
    magic = _load_restricted(stream)
    if magic != 0x1950A86A20F9469CFC6C:
        raise ValueError(f"{path} is not a legacy torch.save file.")
    _load_restricted(stream)  # protocol version
    _load_restricted(stream)  # system info (endianness, type sizes)
    state = _load_restricted(stream)
    keys = _load_restricted(stream)
    if not isinstance(state, dict) or not isinstance(keys, list):
        raise ValueError(f"{path} does not hold a state dict.")
    storages: dict[str, np.ndarray] = {}
    for key in keys:
        (elements,) = struct.unpack("<q", stream.read(8))
        data = stream.read(4 * elements)
        if len(data) != 4 * elements:
            raise ValueError(f"{path} ends inside storage {key}.")
        storages[str(key)] = np.frombuffer(data, dtype="<f4").copy()
    arrays = {}
    for name, tensor in state.items():
        if not isinstance(tensor, _TensorRef):
            raise ValueError(f"{name} in {path} is not a tensor.")
        flat = storages[tensor.storage.key]
        view = np.lib.stride_tricks.as_strided(
            flat[tensor.offset :], shape=tensor.shape, strides=tuple(4 * s for s in tensor.stride), writeable=False
        )
        arrays[str(name)] = np.array(view, dtype=np.float32)
    return arrays


def torch_state_to_weights(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """torch's Linear keeps (out, in) matrices; the checkpoint and Keras keep (in, out)."""
    weights = {key: (state[name].T if transpose else state[name]) for key, (_, name, transpose) in WEIGHT_NAMES.items()}
    weights = {key: np.ascontiguousarray(value, dtype=np.float32) for key, value in weights.items()}
    check_shapes(weights)
    return weights


def convert_nyu_weights(*, checkpoint_prefix: Path, torch_file: Path | None, out: Path) -> dict[str, np.ndarray]:
    """Read the checkpoint, check it against the torch copy when given, and write `out` (an uncompressed .npz of
    four float32 arrays, loaded with allow_pickle=False)."""
    weights = read_checkpoint_weights(checkpoint_prefix)
    if torch_file is not None:
        other = torch_state_to_weights(read_legacy_torch_state(torch_file))
        for key in WEIGHT_SHAPES:
            if not np.array_equal(weights[key], other[key]):
                raise ValueError(f"{key} differs between {checkpoint_prefix} and {torch_file}.")
    write_npz(Path(out), weights)
    return weights


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An .npz that np.load reads, written byte for byte the same on every run (np.savez stamps the current time
    into the zip, so the file's SHA-256, which the registry records, would change with each conversion)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for key in sorted(arrays):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            archive.writestr(zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0)), buffer.getvalue())
