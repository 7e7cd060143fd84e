"""The manifest that comes with an imported model: what it is, who made it, what it takes and gives, how it was
validated. Filled in on the import page or supplied as a JSON file (the same keys); validated here, once, with an
error per field that the page shows beside the field and the command prints.

    {
      "name": "acme-mammo-2.1", "version": "2.1.0", "vendor": "Acme AI", "licence": "Commercial, site licence 42",
      "intended_use": "Per-image malignancy score for screening mammograms (FFDM), as a second reader aid.",
      "kind": "malignancy",
      "input": {"views": ["CC", "MLO"], "size": 512, "channels": 3, "layout": "NHWC", "normalisation": "0-1",
                "bit_depth": 16, "preprocessing": "platform-1"},
      "output": {"unit": "image", "index": 0, "activation": "probability", "name": ""},
      "operating_points": [{"name": "default", "threshold": 0.42, "sensitivity": 0.86, "specificity": 0.9}],
      "training_data": "...", "validation": {"summary": "...", "auc": 0.91, "auc_ci95": [0.89, 0.93],
                                           "dataset": "...", "reference": "..."}
    }

The input is the platform's preprocessed image (inference/serving/preprocessing.py: breast found and cropped,
chest wall on the left, padded to a square, resized), which a model must have been trained on: "preprocessing"
names that version, and a model trained on another is refused rather than run on images it has never seen.
"""

from __future__ import annotations

import re

from inference.serving.networks import ACTIVATIONS, LAYOUTS, NORMALISATIONS
from inference.serving.preprocessing import PREPROCESSING_VERSION

PLATFORM_PREPROCESSING = f"platform-{PREPROCESSING_VERSION}"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
VIEWS = ("CC", "MLO")
UNITS = ("image", "breast")
KINDS = ("malignancy",)  # density models are registered from the platform's own folders (install_default_model)
TEXT_LIMIT = 4000


class ManifestInvalid(Exception):
    """`errors`: {field: message}, fields as dotted keys ('input.size')."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))
        self.errors = errors


def _text(data: dict, key: str, errors: dict, field: str, *, required: bool = True, limit: int = TEXT_LIMIT) -> str:
    value = data.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errors[field] = "Required."
        return ""
    if not isinstance(value, str):
        errors[field] = "Must be text."
        return ""
    value = value.strip()
    if len(value) > limit:
        errors[field] = f"At most {limit} characters."
    return value


def _number(value, field: str, errors: dict, *, low: float, high: float, integer: bool = False, required=True):
    if value is None or value == "":
        if required:
            errors[field] = "Required."
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        number = int(value) if integer else float(value)
        if integer and float(value) != number:
            raise ValueError
    except (TypeError, ValueError):
        errors[field] = "Must be a whole number." if integer else "Must be a number."
        return None
    if not (low <= number <= high):
        errors[field] = f"Must be between {low:g} and {high:g}."
        return None
    return number


def _choice(value, field: str, errors: dict, choices, *, default=None):
    if value in (None, "") and default is not None:
        return default
    if value not in choices:
        errors[field] = f"Must be one of: {', '.join(str(c) for c in choices)}."
        return None
    return value


def manifest_validated(data: dict, *, runtime: str) -> dict:
    """The manifest as stored (normalised: defaults filled in), or ManifestInvalid with every error at once."""
    if not isinstance(data, dict):
        raise ManifestInvalid({"manifest": "Must be a JSON object."})
    errors: dict[str, str] = {}
    name = _text(data, "name", errors, "name", limit=100)
    if name and not NAME_PATTERN.match(name):
        errors["name"] = "Letters, digits, '.', '_' and '-' only, starting with a letter or digit (at most 100)."
    manifest: dict = {
        "name": name,
        "version": _text(data, "version", errors, "version", limit=50),
        "vendor": _text(data, "vendor", errors, "vendor", limit=200),
        "licence": _text(data, "licence", errors, "licence", limit=500),
        "intended_use": _text(data, "intended_use", errors, "intended_use"),
        "kind": _choice(data.get("kind"), "kind", errors, KINDS, default="malignancy"),
        "training_data": _text(data, "training_data", errors, "training_data"),
    }
    if data.get("kind") == "density":
        errors["kind"] = (
            "Density models cannot be imported yet: the platform runs its own density networks "
            "(inference/density), registered by install_default_model."
        )

    spec = data.get("input")
    if not isinstance(spec, dict):
        errors["input"] = "Required: an object with views, size, channels, layout, normalisation, bit_depth."
        spec = {}
    views = spec.get("views")
    if isinstance(views, str):
        views = [v.strip().upper() for v in views.replace(",", " ").split() if v.strip()]
    if not isinstance(views, list) or not views or any(v not in VIEWS for v in views):
        errors["input.views"] = "A list of the views the model reads: CC, MLO or both."
        views = []
    layout_default = "NCHW" if runtime == "onnx" else "NHWC"
    manifest["input"] = {
        "views": sorted(set(views), key=VIEWS.index),
        "size": _number(spec.get("size"), "input.size", errors, low=32, high=2048, integer=True),
        "channels": _number(spec.get("channels", 3), "input.channels", errors, low=1, high=3, integer=True),
        "layout": _choice(spec.get("layout"), "input.layout", errors, LAYOUTS, default=layout_default),
        "normalisation": _choice(spec.get("normalisation"), "input.normalisation", errors, tuple(NORMALISATIONS)),
        "bit_depth": _number(spec.get("bit_depth", 16), "input.bit_depth", errors, low=8, high=16, integer=True),
        "preprocessing": _choice(
            spec.get("preprocessing"), "input.preprocessing", errors, (PLATFORM_PREPROCESSING,),
            default=PLATFORM_PREPROCESSING,
        ),
    }  # fmt: skip
    if manifest["input"]["channels"] == 2:
        errors["input.channels"] = "1 (greyscale) or 3 (the grey image in each of three channels)."
    if manifest["input"]["bit_depth"] not in (None, 8, 16):
        errors["input.bit_depth"] = "8 or 16."

    out = data.get("output")
    if not isinstance(out, dict):
        errors["output"] = "Required: an object with unit, index, activation."
        out = {}
    manifest["output"] = {
        "unit": _choice(out.get("unit"), "output.unit", errors, UNITS, default="image"),
        "index": _number(out.get("index", 0), "output.index", errors, low=0, high=999, integer=True),
        "activation": _choice(out.get("activation"), "output.activation", errors, ACTIVATIONS),
        "name": _text(out, "name", errors, "output.name", required=False, limit=200),
    }

    points = data.get("operating_points")
    if not isinstance(points, list) or not points:
        errors["operating_points"] = "At least one operating point: a threshold on the probability, in [0, 1]."
        points = []
    manifest["operating_points"] = []
    for i, point in enumerate(points[:10]):
        if not isinstance(point, dict):
            errors[f"operating_points.{i}"] = "Must be an object with name and threshold."
            continue
        manifest["operating_points"].append(
            {
                "name": _text(point, "name", errors, f"operating_points.{i}.name", required=False, limit=100)
                or ("default" if i == 0 else f"point {i + 1}"),
                "threshold": _number(point.get("threshold"), f"operating_points.{i}.threshold", errors, low=0, high=1),
                "sensitivity": _number(point.get("sensitivity"), f"operating_points.{i}.sensitivity", errors, low=0,
                                       high=1, required=False),
                "specificity": _number(point.get("specificity"), f"operating_points.{i}.specificity", errors, low=0,
                                       high=1, required=False),
            }
        )  # fmt: skip

    validation = data.get("validation")
    if isinstance(validation, str):
        validation = {"summary": validation}
    if not isinstance(validation, dict):
        errors["validation"] = "Required: the published validation figures (summary, and AUC with its CI if known)."
        validation = {}
    interval = validation.get("auc_ci95")
    if interval not in (None, "", []) and not (
        isinstance(interval, list) and len(interval) == 2 and all(isinstance(v, int | float) for v in interval)
    ):
        errors["validation.auc_ci95"] = "Two numbers: the lower and upper bound."
        interval = None
    manifest["validation"] = {
        "summary": _text(validation, "summary", errors, "validation.summary"),
        "auc": _number(validation.get("auc"), "validation.auc", errors, low=0, high=1, required=False),
        "auc_ci95": [float(v) for v in interval] if interval else None,
        "dataset": _text(validation, "dataset", errors, "validation.dataset", required=False, limit=500),
        "reference": _text(validation, "reference", errors, "validation.reference", required=False, limit=500),
    }
    if errors:
        raise ManifestInvalid(errors)
    return manifest


def manifest_card(manifest: dict) -> dict:
    """The model card an imported model carries in the registry: the manifest's facts. No "metrics": the vendor's
    published figures are the vendor's, not a sealed test here, so they never make the model "validated"
    (inference.serving.validation); the local acceptance test decides what this site accepts."""
    return {
        "name": manifest["name"],
        "version": manifest["version"],
        "vendor": manifest["vendor"],
        "licence": manifest["licence"],
        "intended_use": manifest["intended_use"],
        "training_data": manifest["training_data"],
        "published_validation": manifest["validation"],
        "source": "imported",
    }


def published_figures(manifest: dict | None) -> str:
    """The vendor's published validation in one line, for the inventory: 'AUC 0.91 (0.89–0.93), <dataset>'."""
    validation = (manifest or {}).get("validation") or {}
    parts = []
    if validation.get("auc") is not None:
        interval = validation.get("auc_ci95")
        parts.append(f"AUC {validation['auc']:.2f}" + (f" ({interval[0]:.2f}–{interval[1]:.2f})" if interval else ""))
    if validation.get("dataset"):
        parts.append(validation["dataset"])
    return ", ".join(parts) or (validation.get("summary") or "")[:200]
