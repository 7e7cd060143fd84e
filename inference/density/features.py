"""Image features of the density model trained here on mini-MIAS (inference.density.mias_model), shared by its
training (inference.training.density) and its serving, so both compute exactly the same numbers.

Candidates compared by cross-validation (the kept one is named in the model's card):
- 'nyu-histogram': the NYU reference's 50-bin histogram of the whole view (inference.density.histogram), refitted
  here: the histogram approach as published, on this data.
- 'breast-quantiles': 19 quantiles (5 % ... 95 %) of the grey levels inside the breast (the platform's breast mask,
  inference.serving.preprocessing.breast_mask): the breast's own intensity distribution, without the background,
  film labels and scanner borders that dominate a whole-film histogram.
- 'lite0-block4' / 'lite0-top': ImageNet EfficientNet-Lite0 (the project's converted Apache-2.0 weights) run on the
  platform's preprocessed 512 px input (inference.serving.preprocessing.preprocess), its feature map averaged over
  the image: after stage 4 (80 channels, stride 16: texture at the scale of fibroglandular tissue) or at the top
  (1280 channels, stride 32). The body is frozen: 224 training images cannot train a network, a linear read-out of
  fixed features they can.
"""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np

from inference.density.histogram import view_histogram

FEATURE_KINDS = ("nyu-histogram", "breast-quantiles", "lite0-block4", "lite0-top")
LITE0_LAYERS = {"lite0-block4": "block4c_add", "lite0-top": "top_activation"}
LITE0_INPUT_SIZE = 512
QUANTILES = tuple(np.round(np.linspace(0.05, 0.95, 19), 2))


def breast_pixels(pixels: np.ndarray) -> np.ndarray:
    """The pixels inside the breast mask (the whole image when no breast is found)."""
    from inference.serving.preprocessing import breast_mask

    mask, _ = breast_mask(pixels)
    full = cv2.resize(mask.astype(np.uint8), (pixels.shape[1], pixels.shape[0]), interpolation=cv2.INTER_NEAREST)
    inside = pixels[full.astype(bool)]
    return inside if inside.size else pixels.ravel()


def breast_quantiles(pixels: np.ndarray) -> np.ndarray:
    return np.quantile(breast_pixels(np.asarray(pixels, dtype=np.float32)), QUANTILES).astype(np.float64)


def lite0_feature_network(*, kind: str, weights: Path):
    """The frozen Lite0 body up to `kind`'s layer, averaged over the image: (n, S, S, 3) in [0, 255] -> (n, C)."""
    import keras

    from inference.serving.backbones import efficientnet_lite0_body

    inputs = keras.Input(shape=(None, None, 3), name="image")
    body = efficientnet_lite0_body(inputs)
    body.load_weights(str(weights))
    pooled = keras.layers.GlobalAveragePooling2D(name="feature_mean")(body.get_layer(LITE0_LAYERS[kind]).output)
    return keras.Model(inputs, pooled, name=f"density_features_{kind.replace('-', '_')}")


class FeatureExtractor:
    """One kind of feature for one image at a time; a Lite0 network is loaded once per extractor (from the model
    directory's `features.keras` when serving, or built from the ImageNet weights when training)."""

    def __init__(self, kind: str, *, network=None) -> None:
        if kind not in FEATURE_KINDS:
            raise ValueError(f"Unknown feature kind {kind!r}; one of {FEATURE_KINDS}.")
        if kind in LITE0_LAYERS and network is None:
            raise ValueError(f"{kind} needs its feature network.")
        self.kind = kind
        self.network = network
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, kind: str, path: Path | None) -> FeatureExtractor:
        """Load a saved feature network (.keras, safe mode: no code in the file runs)."""
        if kind not in LITE0_LAYERS:
            return cls(kind)
        import keras

        return cls(kind, network=keras.saving.load_model(Path(path), compile=False, safe_mode=True))

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        """Decoded pixels (float32 in [0, 1], imaging.decoding) -> a 1-D feature vector (float64)."""
        pixels = np.asarray(pixels, dtype=np.float32)
        if self.kind == "nyu-histogram":
            return view_histogram(pixels)
        if self.kind == "breast-quantiles":
            return breast_quantiles(pixels)
        from inference.serving.preprocessing import preprocess

        tensor = preprocess(pixels, input_size=LITE0_INPUT_SIZE).tensor[None]
        with self._lock:
            return np.asarray(self.network(tensor, training=False), dtype=np.float64)[0]
