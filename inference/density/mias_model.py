"""The density model trained here on mini-MIAS tissue labels (manage.py train_density_model), as served.

One Keras file, `model.keras`: for image features (EfficientNet-Lite0 kinds) the frozen feature body, the training
features' standardisation and the fitted multinomial logistic read-out in one network, image in, probabilities out;
for the histogram kinds the same standardisation and read-out on the feature vector (inference.density.features
computes it). Output classes are mini-MIAS's own three, F (fatty), G (fatty-glandular), D (dense-glandular): the
labels it learnt; mapping them onto BI-RADS a-d would invent a split (c from d, a from b) no label supports.

Trained on MLO views only (all mini-MIAS images are MLO), so it reads each breast's MLO view; CC views are left
out and listed as such. A breast's probabilities are its MLO view's, the exam's the mean over breasts
(both breasts of a mini-MIAS woman carry the same label, and validation averaged them the same way). A model
records the platform preprocessing version it was trained with (card density.preprocessing_version), and a
different version is refused, as for the malignancy model.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from inference.density.features import LITE0_INPUT_SIZE, LITE0_LAYERS, FeatureExtractor
from inference.density.views import DensityInputError, checked_views

MIAS_CLASSES = ("F", "G", "D")
MODEL_FILE = "model.keras"


def readout_network(*, features: int, mean: np.ndarray, variance: np.ndarray, coef: np.ndarray, intercept: np.ndarray):
    """Standardisation + softmax read-out as Keras layers (weights from scikit-learn's LogisticRegression)."""
    import keras

    inputs = keras.Input(shape=(features,), name="features")
    return keras.Model(inputs, readout_layers(inputs, mean, variance, coef, intercept), name="density_readout")


def readout_layers(x, mean: np.ndarray, variance: np.ndarray, coef: np.ndarray, intercept: np.ndarray):
    import keras

    x = keras.layers.Normalization(mean=mean, variance=variance, name="standardise")(x)
    dense = keras.layers.Dense(len(MIAS_CLASSES), activation="softmax", name="density", dtype="float32")
    out = dense(x)
    dense.set_weights([np.asarray(coef, dtype=np.float32).T, np.asarray(intercept, dtype=np.float32)])
    return out


class MiasDensity:
    classes = MIAS_CLASSES

    def __init__(self, model_file: Path, card: dict) -> None:
        import keras

        from inference.serving.preprocessing import PREPROCESSING_VERSION

        density = card.get("density") or {}
        self.feature_kind = str(density.get("features") or "")
        trained_with = str(density.get("preprocessing_version") or PREPROCESSING_VERSION)
        if self.feature_kind in LITE0_LAYERS and trained_with != PREPROCESSING_VERSION:
            raise ValueError(
                f"The model was trained with preprocessing version {trained_with}; this platform has "
                f"{PREPROCESSING_VERSION}."
            )
        self.network = keras.saving.load_model(Path(model_file), compile=False, safe_mode=True)
        self.image_input = self.feature_kind in LITE0_LAYERS
        self.extractor = None if self.image_input else FeatureExtractor(self.feature_kind)
        self._lock = threading.Lock()

    def predict_images(self, images: list[np.ndarray]) -> np.ndarray:
        """Decoded pixels of n images -> (n, 3) probabilities F, G, D (float64)."""
        from inference.serving.preprocessing import preprocess

        if self.image_input:
            batch = np.stack(
                [preprocess(np.asarray(p, np.float32), input_size=LITE0_INPUT_SIZE).tensor for p in images]
            )
        else:
            batch = np.stack([self.extractor(p) for p in images]).astype(np.float32)
        with self._lock:
            return np.asarray(self.network(batch, training=False), dtype=np.float64)

    def predict_views(self, views: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], list[str]]:
        """({'L'/'R': probabilities of that breast from its MLO view}, the views left out)."""
        given = checked_views(views)
        used = [name for name in sorted(given) if name.endswith("-MLO")]
        if not used:
            raise DensityInputError(
                "missing_views", "The mini-MIAS density model reads MLO views (the only view it was trained on); none."
            )
        probabilities = self.predict_images([given[name] for name in used])
        per_breast = {name[0]: probabilities[i] for i, name in enumerate(used)}
        return per_breast, [name for name in sorted(given) if name not in used]
