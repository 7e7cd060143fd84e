"""The density API the platform calls: `density_predict(views) -> DensityResult`. Django-free; each model is loaded
once per process (TensorFlow is imported on first use, never at import, so a forking parent stays clean).

    from inference.density import density_predict
    result = density_predict({"L-CC": pixels, "R-CC": ..., "L-MLO": ..., "R-MLO": ...})   # NYU model by default
    result.category, result.probabilities, result.per_breast["L"].category, result.validation.statement

Pixels are imaging.decoding's DecodedImage.pixels (float32 in [0, 1], after rescale, VOI window and MONOCHROME1
inversion; the working image of ingestion is fine) or 8-bit levels. Models ship in default_model/density-*/
(weights, LICENSE, model_card.json, MODEL_CARD.md); `density_model_load(folder)` loads any such folder, e.g. one the
registry copied into MODEL_DIR.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from inference.density.validation import DensityValidation, density_validation
from inference.density.views import DensityInputError

REPO = Path(__file__).resolve().parents[2]
SHIPPED_MODELS = {
    "nyu-histogram": REPO / "default_model" / "density-nyu-histogram",
    "mini-mias": REPO / "default_model" / "density-mini-mias",
}
DEFAULT_MODEL = "nyu-histogram"
# The classes counted as "dense" on each scale: BI-RADS c and d (the FDA MQSA rule's "dense"); mini-MIAS D.
DENSE_CLASSES = {"birads": ("c", "d"), "mini-mias": ("D",)}


@dataclass(frozen=True)
class BreastDensity:
    probabilities: dict[str, float]
    category: str
    dense_probability: float


@dataclass(frozen=True)
class DensityResult:
    model_name: str
    model_sha256: str  # of the model's weights file (what the registry records)
    scale: str  # 'birads' (a-d) or 'mini-mias' (F/G/D)
    probabilities: dict[str, float]  # the exam's
    category: str  # the most probable class
    dense_probability: float  # P(c) + P(d), or P(D)
    per_breast: dict[str, BreastDensity]  # 'L' / 'R', for the breasts that could be assessed
    validation: DensityValidation
    substitutions: dict[str, str] = field(default_factory=dict)  # missing view -> the view that stood in
    views_left_out: tuple[str, ...] = ()  # given but not read (the mini-MIAS model reads MLO only)
    notes: tuple[str, ...] = ()

    @property
    def dense(self) -> bool:
        return self.category in DENSE_CLASSES[self.scale]

    def as_dict(self) -> dict:
        return {
            "model": self.model_name,
            "model_sha256": self.model_sha256,
            "scale": self.scale,
            "probabilities": self.probabilities,
            "category": self.category,
            "dense": self.dense,
            "dense_probability": self.dense_probability,
            "per_breast": {side: breast.__dict__ for side, breast in self.per_breast.items()},
            "substitutions": self.substitutions,
            "views_left_out": list(self.views_left_out),
            "validated": self.validation.validated,
            "validation": self.validation.statement,
            "notes": list(self.notes),
        }


def _breast(classes: tuple[str, ...], scale: str, probabilities: np.ndarray) -> BreastDensity:
    values = {name: float(p) for name, p in zip(classes, probabilities, strict=True)}
    return BreastDensity(
        probabilities=values,
        category=classes[int(np.argmax(probabilities))],
        dense_probability=float(sum(values[c] for c in DENSE_CLASSES[scale])),
    )


class DensityModel:
    """A loaded density model: its card, its weights file's SHA-256, and the network. From a shipped folder
    (`from_folder`) or from a weights file and a card kept elsewhere (a registry row: file in MODEL_DIR, card in
    the database)."""

    def __init__(self, weights_file: Path, card: dict) -> None:
        weights_file = Path(weights_file)
        if not weights_file.is_file():
            raise FileNotFoundError(f"{weights_file} (the density model's weights) is missing.")
        self.weights_file = weights_file
        self.card = card
        density = card.get("density") or {}
        self.name = str(card.get("name") or weights_file.parent.name)
        self.architecture = str(density.get("architecture") or "")
        self.sha256 = hashlib.sha256(weights_file.read_bytes()).hexdigest()
        if self.architecture == "nyu-histogram":
            from inference.density.nyu import NyuHistogramDensity

            self.scale, self.network = "birads", NyuHistogramDensity(weights_file)
        elif self.architecture == "mini-mias-readout":
            from inference.density.mias_model import MiasDensity

            self.scale, self.network = "mini-mias", MiasDensity(weights_file, card)
        else:
            raise ValueError(f"{weights_file}: unknown density architecture {self.architecture!r} in its card.")
        self.classes = tuple(self.network.classes)

    @classmethod
    def from_folder(cls, model_dir: Path) -> DensityModel:
        """A folder holding model_card.json and the file its "model_file" names (default_model/density-*)."""
        card = json.loads((Path(model_dir) / "model_card.json").read_text())
        return cls(Path(model_dir) / str(card.get("model_file") or ""), card)

    def self_check(self) -> DensityResult:
        """Run a synthetic four-view exam through the model and check the answer is a distribution over its
        classes: what registration should do before a density model is recorded (the malignancy registry runs
        zeros through its network the same way)."""
        rows, columns = np.mgrid[0:260, 0:200]
        breast = ((columns / 150.0) ** 2 + ((rows - 130) / 110.0) ** 2 < 1).astype(np.float32)
        pixels = 0.05 + 0.6 * breast * (0.7 + 0.3 * np.sin(rows / 7.0) * np.cos(columns / 5.0))
        result = self.predict({name: pixels.astype(np.float32) for name in ("L-CC", "R-CC", "L-MLO", "R-MLO")})
        total = sum(result.probabilities.values())
        if tuple(result.probabilities) != self.classes or abs(total - 1.0) > 1e-4:
            raise ValueError(f"{self.name} does not give a distribution over {self.classes}: {result.probabilities}")
        return result

    @property
    def validation(self) -> DensityValidation:
        return density_validation(self.card)

    def predict(self, views: Mapping[str, np.ndarray], *, substitute_missing: bool = False) -> DensityResult:
        """The exam's and each breast's density. The NYU model refuses an exam lacking a view unless
        `substitute_missing` (inference.density.nyu); the mini-MIAS model reads MLO views only."""
        notes: list[str] = []
        left_out: list[str] = []
        substitutions: dict[str, str] = {}
        if self.scale == "birads":
            exam, substitutions = self.network.predict_exam(views, substitute_missing=substitute_missing)
            breasts = self.network.predict_breasts(views, substitute_missing=substitute_missing)
            notes.append(
                "Per-breast values present one breast as both sides of an exam: an adaptation of an exam-level model."
            )
        else:
            breasts, left_out = self.network.predict_views(views)
            exam = np.mean(list(breasts.values()), axis=0)
            if left_out:
                notes.append(f"Not read (the model was trained on MLO views only): {', '.join(left_out)}.")
        if substitutions:
            stood_in = ", ".join(f"{view} by {other}" for view, other in substitutions.items())
            notes.append(f"Missing views replaced by the same breast's other view: {stood_in}.")
        summary = _breast(self.classes, self.scale, exam)
        return DensityResult(
            model_name=self.name,
            model_sha256=self.sha256,
            scale=self.scale,
            probabilities=summary.probabilities,
            category=summary.category,
            dense_probability=summary.dense_probability,
            per_breast={side: _breast(self.classes, self.scale, p) for side, p in breasts.items()},
            validation=self.validation,
            substitutions=substitutions,
            views_left_out=tuple(left_out),
            notes=tuple(notes),
        )


_lock = threading.Lock()
_loaded: dict[Path, DensityModel] = {}


def density_model_load(model_dir: Path) -> DensityModel:
    """The shipped-style folder `model_dir`, loaded once per process and then reused."""
    key = Path(model_dir).resolve()
    with _lock:
        if key not in _loaded:
            _loaded[key] = DensityModel.from_folder(key)
        return _loaded[key]


def density_model_from_file(weights_file: Path, card: dict) -> DensityModel:
    """A registered model (its file in MODEL_DIR, its card from the registry row), loaded once per process."""
    key = Path(weights_file).resolve()
    with _lock:
        if key not in _loaded:
            _loaded[key] = DensityModel(key, card)
        return _loaded[key]


def density_model_get(name: str = DEFAULT_MODEL) -> DensityModel:
    """A shipped model by name: 'nyu-histogram' or 'mini-mias'."""
    if name not in SHIPPED_MODELS:
        raise ValueError(f"Unknown density model {name!r}; shipped: {', '.join(SHIPPED_MODELS)}.")
    return density_model_load(SHIPPED_MODELS[name])


def density_predict(
    views: Mapping[str, np.ndarray], *, model: str | Path = DEFAULT_MODEL, substitute_missing: bool = False
) -> DensityResult:
    """Density of one exam. `views`: {'L-CC' | 'R-CC' | 'L-MLO' | 'R-MLO': pixels}. `model`: a shipped model's name
    or a model folder. Raises DensityInputError (with .code and .reason) when the views cannot be assessed."""
    loaded = density_model_load(Path(model)) if isinstance(model, Path) else density_model_get(model)
    return loaded.predict(views, substitute_missing=substitute_missing)


__all__ = [
    "BreastDensity",
    "DensityInputError",
    "DensityModel",
    "DensityResult",
    "density_model_from_file",
    "density_model_get",
    "density_model_load",
    "density_predict",
]
