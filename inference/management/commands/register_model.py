import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core.errors import ApplicationError
from inference.serving.backbones import BACKBONES
from inference.serving.registry import model_version_register
from inference.serving.spec import ServingSpec


class Command(BaseCommand):
    help = (
        "Register a model file (.keras, or .h5 as a full model or as weights for the backbone) as a ModelVersion, "
        "after checking that it loads and produces a probability and a Grad-CAM map. --activate accepts it for "
        "research use (recorded as such) and makes it the model that analyses new uploads (and any image waiting "
        "for a model). Models made elsewhere (ONNX, SavedModel, with a manifest): import_model."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)
        parser.add_argument("--name", required=True)
        parser.add_argument("--backbone", required=True, choices=[*BACKBONES, "custom"])
        parser.add_argument("--input-size", type=int, default=None)
        parser.add_argument("--threshold", type=float, default=None)
        parser.add_argument(
            "--card", type=Path, default=None, help="Model card JSON (threshold, calibration, metrics)."
        )
        parser.add_argument("--activate", action="store_true")
        parser.add_argument(
            "--confirm-unvalidated", action="store_true", help="With --activate: activate it even if not validated."
        )

    def handle(
        self, *args, path, name, backbone, input_size, threshold, card, activate, confirm_unvalidated, **options
    ):
        card_data = json.loads(card.read_text()) if card else {}
        if card_data:
            spec = ServingSpec.from_card(path, card_data)
        else:
            spec = ServingSpec(model_path=path, backbone=backbone, input_size=input_size or 0)
        try:
            version = model_version_register(
                path=path,
                name=name,
                backbone=backbone,
                input_size=input_size or spec.input_size or None,
                threshold=threshold if threshold is not None else spec.threshold,
                calibration_scale=spec.calibration_scale,
                calibration_bias=spec.calibration_bias,
                preprocessing_version=spec.preprocessing_version,
                metrics=card_data.get("metrics", {}),
                card=card_data,
                activate=activate,
                confirm_unvalidated=confirm_unvalidated,
                confirmed_by="register_model --confirm-unvalidated",
                registered_by="register_model",
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        state = "registered and activated" if activate else "registered (not active)"
        self.stdout.write(self.style.SUCCESS(f"{version.name} {state}; file SHA-256 {version.file_sha256}."))
