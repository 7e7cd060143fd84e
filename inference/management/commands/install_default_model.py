import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from cases.errors import ApplicationError
from inference.loading import file_sha256
from inference.models import ModelVersion
from inference.services import model_version_activate, model_version_register


class Command(BaseCommand):
    help = (
        "Register the default model shipped in default_model/ (once) and activate it when no model is active. "
        "Safe to run on every start: it never replaces a model an administrator activated."
    )

    def handle(self, *args, **options):
        folder = settings.DEFAULT_MODEL_DIR
        model_file = folder / "model.keras"
        card_file = folder / "model_card.json"
        if not model_file.exists():
            self.stdout.write(self.style.WARNING(f"No default model at {model_file}; uploads will wait for one."))
            return
        card = json.loads(card_file.read_text()) if card_file.exists() else {}
        serving = card.get("serving", {})
        sha = file_sha256(model_file)
        version = ModelVersion.objects.filter(file_sha256=sha).first()
        if version is None:
            try:
                version = model_version_register(
                    path=model_file,
                    name=card.get("name") or f"default-{sha[:8]}",
                    backbone=serving.get("backbone", card.get("backbone", "b0")),
                    input_size=serving.get("input_size"),
                    threshold=serving.get("threshold", 0.5),
                    calibration_scale=serving.get("calibration_scale", 1.0),
                    calibration_bias=serving.get("calibration_bias", 0.0),
                    preprocessing_version=serving.get("preprocessing_version") or _preprocessing_version(),
                    metrics=card.get("metrics", {}),
                    card=card,
                )
            except ApplicationError as exc:
                raise CommandError(exc.message) from exc
            self.stdout.write(f"Registered the default model as {version.name}.")
        if not ModelVersion.objects.filter(is_active=True).exists():
            model_version_activate(model_version=version)
            self.stdout.write(self.style.SUCCESS(f"Activated {version.name}."))
        else:
            active = ModelVersion.objects.get(is_active=True)
            self.stdout.write(f"Active model: {active.name} (left as it is).")


def _preprocessing_version() -> str:
    from inference.preprocessing import PREPROCESSING_VERSION

    return PREPROCESSING_VERSION
