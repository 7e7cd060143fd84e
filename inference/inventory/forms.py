"""The import form (a model file with a manifest filled in here or uploaded as JSON) and the status change form."""

from __future__ import annotations

import json

from django import forms

from inference.imports.manifest import UNITS, VIEWS
from inference.models import ModelStatus
from inference.serving.networks import ACTIVATIONS, LAYOUTS, NORMALISATIONS

MANIFEST_FILE_MAX_BYTES = 256 * 1024

# Manifest error keys (inference.imports.manifest) -> the form field that shows them.
ERROR_FIELDS = {
    "name": "name", "version": "version", "vendor": "vendor", "licence": "licence", "intended_use": "intended_use",
    "training_data": "training_data", "kind": "name",
    "input.views": "input_views", "input.size": "input_size", "input.channels": "input_channels",
    "input.layout": "input_layout", "input.normalisation": "input_normalisation", "input.bit_depth": "input_bit_depth",
    "output.unit": "output_unit", "output.index": "output_index", "output.activation": "output_activation",
    "output.name": "output_name", "operating_points": "op_threshold", "operating_points.0.threshold": "op_threshold",
    "operating_points.0.name": "op_name", "operating_points.0.sensitivity": "op_sensitivity",
    "operating_points.0.specificity": "op_specificity", "validation": "validation_summary",
    "validation.summary": "validation_summary", "validation.auc": "validation_auc",
    "validation.auc_ci95": "validation_auc_low", "validation.dataset": "validation_dataset",
    "validation.reference": "validation_reference",
}  # fmt: skip


def _choices(values) -> list[tuple[str, str]]:
    return [(v, v) for v in values]


class ModelImportForm(forms.Form):
    model_file = forms.FileField(
        label="Model file", help_text="A Keras .keras file, a .zip of a TensorFlow SavedModel folder, or an .onnx file."
    )
    manifest_file = forms.FileField(
        label="Manifest (JSON file)",
        required=False,
        help_text="Optional: the manifest as a JSON file. When given, the fields below are not used.",
    )
    name = forms.CharField(required=False, max_length=100, help_text="Unique in the inventory, e.g. acme-mammo-2.1.")
    version = forms.CharField(required=False, max_length=50)
    vendor = forms.CharField(required=False, max_length=200)
    licence = forms.CharField(required=False, max_length=500)
    intended_use = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    training_data = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    input_views = forms.MultipleChoiceField(
        label="Views it reads", required=False, choices=_choices(VIEWS), widget=forms.CheckboxSelectMultiple
    )
    input_size = forms.IntegerField(label="Input size (pixels, square)", required=False, min_value=32, max_value=2048)
    input_channels = forms.TypedChoiceField(
        label="Channels", required=False, coerce=int, choices=[(3, "3 (grey in each)"), (1, "1")], initial=3
    )
    input_layout = forms.ChoiceField(label="Layout", required=False, choices=_choices(LAYOUTS))
    input_normalisation = forms.ChoiceField(
        label="Normalisation", required=False, choices=[(k, f"{k}: {v}") for k, v in NORMALISATIONS.items()]
    )
    input_bit_depth = forms.TypedChoiceField(
        label="Bit depth it was trained on", required=False, coerce=int, choices=[(16, "16"), (8, "8")], initial=16
    )
    output_unit = forms.ChoiceField(label="Probability of", required=False, choices=_choices(UNITS))
    output_index = forms.IntegerField(label="Output index of the score", required=False, min_value=0, initial=0)
    output_activation = forms.ChoiceField(label="Output is a", required=False, choices=_choices(ACTIVATIONS))
    output_name = forms.CharField(label="Output name (if several)", required=False, max_length=200)
    op_name = forms.CharField(label="Operating point name", required=False, max_length=100, initial="default")
    op_threshold = forms.FloatField(label="Operating point (threshold on the probability)", required=False)
    op_sensitivity = forms.FloatField(label="Sensitivity there (published)", required=False)
    op_specificity = forms.FloatField(label="Specificity there (published)", required=False)
    validation_summary = forms.CharField(
        label="Published validation", required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    validation_auc = forms.FloatField(label="Published AUC", required=False)
    validation_auc_low = forms.FloatField(label="AUC 95 % CI, low", required=False)
    validation_auc_high = forms.FloatField(label="AUC 95 % CI, high", required=False)
    validation_dataset = forms.CharField(label="Validation data set", required=False, max_length=500)
    validation_reference = forms.CharField(label="Reference (paper, 510(k), URL)", required=False, max_length=500)

    def manifest(self) -> dict:
        """The manifest from the uploaded JSON file if any, else from the fields (validated by the import)."""
        data = self.cleaned_data
        upload = data.get("manifest_file")
        if upload is not None:
            if upload.size > MANIFEST_FILE_MAX_BYTES:
                raise forms.ValidationError("The manifest file is larger than 256 KB.")
            try:
                return json.loads(upload.read().decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as exc:
                raise forms.ValidationError(f"The manifest file is not JSON: {exc}") from exc
        low, high = data.get("validation_auc_low"), data.get("validation_auc_high")
        return {
            "name": data.get("name"),
            "version": data.get("version"),
            "vendor": data.get("vendor"),
            "licence": data.get("licence"),
            "intended_use": data.get("intended_use"),
            "training_data": data.get("training_data"),
            "kind": "malignancy",
            "input": {
                "views": data.get("input_views") or [],
                "size": data.get("input_size"),
                "channels": data.get("input_channels") or 3,
                "layout": data.get("input_layout") or None,
                "normalisation": data.get("input_normalisation"),
                "bit_depth": data.get("input_bit_depth") or 16,
            },
            "output": {
                "unit": data.get("output_unit") or "image",
                "index": data.get("output_index") or 0,
                "activation": data.get("output_activation"),
                "name": data.get("output_name") or "",
            },
            "operating_points": [
                {
                    "name": data.get("op_name") or "default",
                    "threshold": data.get("op_threshold"),
                    "sensitivity": data.get("op_sensitivity"),
                    "specificity": data.get("op_specificity"),
                }
            ],
            "validation": {
                "summary": data.get("validation_summary"),
                "auc": data.get("validation_auc"),
                "auc_ci95": [low, high] if low is not None and high is not None else None,
                "dataset": data.get("validation_dataset"),
                "reference": data.get("validation_reference"),
            },
        }

    def show_manifest_errors(self, errors: dict[str, str]) -> None:
        for key, message in errors.items():
            field = ERROR_FIELDS.get(key)
            if self.cleaned_data.get("manifest_file") is not None or field is None:
                self.add_error(None, f"Manifest {key}: {message}")
            else:
                self.add_error(field, message)


class StatusChangeForm(forms.Form):
    to_status = forms.ChoiceField(label="New status", choices=ModelStatus.choices)
    reason = forms.CharField(label="Reason", widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)
    confirm_unvalidated = forms.BooleanField(
        label="I have read why this model is not validated; its results are shown as research outputs",
        required=False,
    )
    for_research = forms.BooleanField(
        label="Accept for research use only, without a local acceptance test (the record says so; a model is "
        "accepted at this site only by a lead's sign-off of its acceptance report)",
        required=False,
    )

    def __init__(self, *args, allowed: list[str] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if allowed is not None:
            self.fields["to_status"].choices = [(v, label) for v, label in ModelStatus.choices if v in allowed]
