"""Loading model files: `.keras` first, then `.h5` (full model, then weights into the built architecture).

Never with unsafe deserialisation: Keras' safe_mode stays on, so a model file cannot run arbitrary Python
(Lambda layers with pickled code are refused).
"""

from __future__ import annotations

import logging
from pathlib import Path

from core.storage import file_sha256  # noqa: F401  (registration and commands use it from here)
from inference.serving.backbones import BACKBONES, build_classifier

logger = logging.getLogger(__name__)
MODEL_SUFFIXES = (".keras", ".h5")


class ModelLoadError(Exception):
    pass


def model_file_candidates(path: Path) -> list[Path]:
    """The files to try for a model path, `.keras` before `.h5`, whichever suffix the path itself has."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in MODEL_SUFFIXES else path
    return [stem.with_suffix(suffix) for suffix in MODEL_SUFFIXES if stem.with_suffix(suffix).exists()]


def load_classifier(path: Path, *, backbone: str, input_size: int, pooling: str = "avg"):
    """Load a full model (`.keras`, then `.h5`); a weights-only `.h5` is loaded into `build_classifier(backbone,
    input_size, pooling)`, so pass the pooling the model was trained with (the card's serving.pooling)."""
    import keras

    candidates = model_file_candidates(path)
    if not candidates:
        raise ModelLoadError(f"No model file found at {path} (looked for .keras and .h5).")
    errors = []
    for candidate in candidates:
        try:
            return keras.saving.load_model(candidate, compile=False, safe_mode=True)
        except Exception as exc:  # noqa: BLE001  (collected and reported below)
            errors.append(f"{candidate.name}: {exc}")
            logger.warning("Could not load %s as a full model: %s", candidate, exc)
        if candidate.suffix == ".h5" and backbone in BACKBONES:
            try:
                model = build_classifier(backbone=backbone, input_size=input_size, pooling=pooling)
                model.load_weights(candidate)
                return model
            except Exception as exc:  # noqa: BLE001
                errors.append(f"{candidate.name} (as weights for {backbone}): {exc}")
    raise ModelLoadError("Could not load the model. " + " | ".join(errors))
