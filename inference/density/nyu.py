"""The NYU histogram density model ("BaselineHistogramModel" of Wu et al., "Breast density classification with deep
convolutional neural networks", ICASSP 2018, arXiv 1711.03674; weights BSD-2-Clause from
nyukat/breast_density_classifier), written for Keras 3 from the paper and the reference code's description.

Input: four 50-bin histograms (inference.density.histogram), L-CC, R-CC, L-MLO, R-MLO, concatenated (200 values).
Network: Dense 100 + ReLU, Dense 4 + softmax. Output: BI-RADS composition a (almost entirely fatty), b (scattered
fibroglandular), c (heterogeneously dense), d (extremely dense), one distribution per exam.

Trained on NYU digital screening exams with all four views and never validated elsewhere, so a view that is
missing is not silently invented:
- default: an exam lacking any of the four views is refused (DensityInputError 'missing_views');
- `substitute_missing=True`: a missing view is replaced by the same breast's other view (CC <- MLO or MLO <- CC)
  and the result says so. This is how the model is evaluated on mini-MIAS, whose women have MLO views only; a
  breast with no view at all is still refused (the other breast is a different breast).
Per breast, the model has no output of its own; `predict_breast` presents one breast as both sides of an exam
(its CC as L-CC and R-CC, its MLO as L-MLO and R-MLO). That is an adaptation, shown as such.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from inference.density.histogram import NYU_BINS, view_histogram
from inference.density.nyu_weights import WEIGHT_SHAPES, check_shapes
from inference.density.views import NYU_VIEW_ORDER, DensityInputError, checked_views, other_view

BIRADS_CLASSES = ("a", "b", "c", "d")
WEIGHTS_FILE = "weights.npz"


def nyu_histogram_network(*, bins: int = NYU_BINS):
    """The Keras network, without weights: histograms of four views in, BI-RADS a-d probabilities out."""
    import keras

    inputs = keras.Input(shape=(4 * bins,), name="histograms")
    hidden = keras.layers.Dense(100, activation="relu", name="hidden")(inputs)
    outputs = keras.layers.Dense(len(BIRADS_CLASSES), activation="softmax", name="density", dtype="float32")(hidden)
    return keras.Model(inputs, outputs, name="nyu_histogram_density")


def load_weights_file(path: Path) -> dict[str, np.ndarray]:
    """The converted weights (.npz of four float32 arrays; nothing pickled is accepted)."""
    with np.load(Path(path), allow_pickle=False) as archive:
        weights = {key: archive[key] for key in archive.files}
    check_shapes(weights)
    if set(weights) != set(WEIGHT_SHAPES):
        raise ValueError(f"{path} holds {sorted(weights)}; expected {sorted(WEIGHT_SHAPES)}.")
    return weights


class NyuHistogramDensity:
    """The port, loaded once (see inference.density.api for the per-process instance)."""

    classes = BIRADS_CLASSES

    def __init__(self, weights_path: Path) -> None:
        weights = load_weights_file(weights_path)
        self.network = nyu_histogram_network()
        self.network.get_layer("hidden").set_weights([weights["hidden_kernel"], weights["hidden_bias"]])
        self.network.get_layer("density").set_weights([weights["output_kernel"], weights["output_bias"]])
        self._lock = threading.Lock()  # one Keras call at a time: a threads-pool worker shares this instance

    def predict_histograms(self, histograms: np.ndarray) -> np.ndarray:
        """(n, 200) concatenated histograms -> (n, 4) probabilities a-d (float64)."""
        histograms = np.asarray(histograms, dtype=np.float32)
        if histograms.ndim != 2 or histograms.shape[1] != 4 * NYU_BINS:
            raise ValueError(f"Expected (n, {4 * NYU_BINS}) histograms, got {histograms.shape}.")
        with self._lock:
            return np.asarray(self.network(histograms, training=False), dtype=np.float64)

    @staticmethod
    def exam_views(
        views: Mapping[str, np.ndarray], *, substitute_missing: bool = False
    ) -> tuple[dict[str, np.ndarray], dict[str, str]]:
        """The four views in the reference's order, and {missing view: the view standing in for it}."""
        given = checked_views(views)
        missing = [name for name in NYU_VIEW_ORDER if name not in given]
        if missing and not substitute_missing:
            raise DensityInputError(
                "missing_views",
                f"The NYU density model needs all four views (L-CC, R-CC, L-MLO, R-MLO); {', '.join(missing)} missing.",
            )
        substitutions = {}
        for name in missing:
            stand_in = other_view(name)
            if stand_in not in given:
                raise DensityInputError(
                    "missing_breast", f"No image of the {name[0]} breast: its density cannot be estimated."
                )
            substitutions[name] = stand_in
        exam = {name: given[substitutions.get(name, name)] for name in NYU_VIEW_ORDER}
        return exam, substitutions

    def exam_histograms(self, exam: Mapping[str, np.ndarray]) -> np.ndarray:
        """(200,) histograms of a complete exam, each view's once even when it stands in for another."""
        cache: dict[int, np.ndarray] = {}
        parts = []
        for name in NYU_VIEW_ORDER:
            pixels = exam[name]
            if id(pixels) not in cache:
                cache[id(pixels)] = view_histogram(pixels)
            parts.append(cache[id(pixels)])
        return np.concatenate(parts)

    def predict_exam(
        self, views: Mapping[str, np.ndarray], *, substitute_missing: bool = False
    ) -> tuple[np.ndarray, dict[str, str]]:
        """(probabilities a-d of the exam, substitutions made)."""
        exam, substitutions = self.exam_views(views, substitute_missing=substitute_missing)
        return self.predict_histograms(self.exam_histograms(exam)[None])[0], substitutions

    @staticmethod
    def breast_histograms(cc: np.ndarray, mlo: np.ndarray) -> np.ndarray:
        """One breast as both sides of an exam: (CC, CC, MLO, MLO) histograms."""
        cc_histogram, mlo_histogram = view_histogram(cc), view_histogram(mlo)
        return np.concatenate([cc_histogram, cc_histogram, mlo_histogram, mlo_histogram])

    def predict_breasts(
        self, views: Mapping[str, np.ndarray], *, substitute_missing: bool = False
    ) -> dict[str, np.ndarray]:
        """{'L'/'R': probabilities a-d} for each breast with both views (or one, with substitute_missing)."""
        given = checked_views(views)
        out = {}
        for side in ("L", "R"):
            cc, mlo = given.get(f"{side}-CC"), given.get(f"{side}-MLO")
            if cc is None and mlo is None:
                continue
            if cc is None or mlo is None:
                if not substitute_missing:
                    continue
                cc = mlo if cc is None else cc
                mlo = cc if mlo is None else mlo
            out[side] = self.predict_histograms(self.breast_histograms(cc, mlo)[None])[0]
        return out
