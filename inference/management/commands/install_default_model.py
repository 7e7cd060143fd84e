import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from inference.models import ModelVersion
from inference.serving.loading import file_sha256
from inference.serving.registry import model_version_activate, model_version_register_from_card
from mammo_platform.errors import ApplicationError


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
        sha = file_sha256(model_file)
        version = ModelVersion.objects.filter(file_sha256=sha).first()
        if version is None:
            try:
                version = model_version_register_from_card(
                    model_path=model_file, card=card, name=card.get("name") or f"default-{sha[:8]}"
                )
            except (ApplicationError, ValueError) as exc:
                raise CommandError(getattr(exc, "message", str(exc))) from exc
            self.stdout.write(f"Registered the default model as {version.name}.")
        if not ModelVersion.objects.filter(is_active=True).exists():
            # The shipped model is a research demonstration and is not validated: it is activated so that the
            # platform can be tried at once, and every result it gives is shown as a research score, with why.
            model_version_activate(
                model_version=version,
                confirm_unvalidated=True,
                confirmed_by="install_default_model (the shipped research demonstration model)",
            )
            self.stdout.write(self.style.SUCCESS(f"Activated {version.name}."))
            if not version.validation.validated:
                self.stdout.write(self.style.WARNING(version.validation.statement))
        else:
            active = ModelVersion.objects.get(is_active=True)
            self.stdout.write(f"Active model: {active.name} (left as it is).")
