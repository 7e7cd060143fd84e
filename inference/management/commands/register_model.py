import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from cases.errors import ApplicationError
from inference.backbones import BACKBONES
from inference.services import model_version_register


class Command(BaseCommand):
    help = (
        "Register a model file (.keras, or .h5 as a full model or as weights for the backbone) as a ModelVersion, "
        "after checking that it loads and produces a probability and a Grad-CAM map. --activate makes it the "
        "model that analyses new uploads (and any image waiting for a model)."
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

    def handle(self, *args, path, name, backbone, input_size, threshold, card, activate, **options):
        card_data = json.loads(card.read_text()) if card else {}
        serving = card_data.get("serving", {})
        try:
            version = model_version_register(
                path=path,
                name=name,
                backbone=backbone,
                input_size=input_size or serving.get("input_size"),
                threshold=threshold if threshold is not None else serving.get("threshold", 0.5),
                calibration_scale=serving.get("calibration_scale", 1.0),
                calibration_bias=serving.get("calibration_bias", 0.0),
                preprocessing_version=serving.get("preprocessing_version") or _current_preprocessing(),
                metrics=card_data.get("metrics", {}),
                card=card_data,
                activate=activate,
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        state = "registered and activated" if activate else "registered (not active)"
        self.stdout.write(self.style.SUCCESS(f"{version.name} {state}; file SHA-256 {version.file_sha256}."))


def _current_preprocessing() -> str:
    from inference.preprocessing import PREPROCESSING_VERSION

    return PREPROCESSING_VERSION
