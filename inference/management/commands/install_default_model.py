import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.errors import ApplicationError
from inference.imports.density import density_model_register
from inference.lifecycle import model_version_accept_for_research, model_version_activate
from inference.models import ModelKind, ModelStatus, ModelVersion
from inference.serving.loading import file_sha256
from inference.serving.registry import model_version_register_from_card

INSTALLER = "install_default_model"
# The shipped density model made active by default: the NYU histogram model gives BI-RADS a-d (mini-MIAS's gives
# its own F/G/D). Both are registered.
DEFAULT_DENSITY_FOLDER = "density-nyu-histogram"
DENSITY_FOLDERS = ("density-nyu-histogram", "density-mini-mias")


class Command(BaseCommand):
    help = (
        "Register the models shipped in default_model/ (once each: the malignancy model and the two density models) "
        "and, for each kind that has no active or suspended model, accept the shipped one for research use and "
        "activate it (the NYU histogram model for density). Safe to run on every start: it never replaces a model "
        "an administrator activated and never resumes one that was suspended."
    )

    def handle(self, *args, **options):
        folder = settings.DEFAULT_MODEL_DIR
        model_file = folder / "model.keras"
        card_file = folder / "model_card.json"
        if not model_file.exists():
            self.stdout.write(self.style.WARNING(f"No default model at {model_file}; uploads will wait for one."))
        else:
            card = json.loads(card_file.read_text()) if card_file.exists() else {}
            sha = file_sha256(model_file)
            version = ModelVersion.objects.malignancy().filter(file_sha256=sha).first()
            if version is None:
                try:
                    version = model_version_register_from_card(
                        model_path=model_file,
                        card=card,
                        name=card.get("name") or f"default-{sha[:8]}",
                        registered_by=INSTALLER,
                    )
                except (ApplicationError, ValueError) as exc:
                    raise CommandError(getattr(exc, "message", str(exc))) from exc
                self.stdout.write(f"Registered the default model as {version.name}.")
            self._activate_if_none(version)
        for name in DENSITY_FOLDERS:
            density_folder = folder / name
            if not (density_folder / "model_card.json").exists():
                self.stdout.write(self.style.WARNING(f"No density model at {density_folder}."))
                continue
            try:
                version = density_model_register(folder=density_folder, registered_by=INSTALLER)
            except ApplicationError as exc:
                raise CommandError(exc.message) from exc
            if name == DEFAULT_DENSITY_FOLDER:
                self._activate_if_none(version)

    def _activate_if_none(self, version: ModelVersion) -> None:
        kind = version.get_kind_display().lower()
        current = ModelVersion.objects.filter(kind=version.kind).filter(is_active=True).first()
        suspended = ModelVersion.objects.filter(kind=version.kind, status=ModelStatus.SUSPENDED).first()
        if current is not None:
            self.stdout.write(f"Active {kind} model: {current.name} (left as it is).")
            return
        if suspended is not None:
            self.stdout.write(
                self.style.WARNING(f"The {kind} model {suspended.name} is suspended: no {kind} model is activated.")
            )
            return
        if version.status not in (ModelStatus.IMPORTED, ModelStatus.ACCEPTED):
            self.stdout.write(f"The shipped {kind} model {version.name} is {version.status}: left as it is.")
            return
        # The shipped models are research demonstrations, not validated for clinical use: they are accepted for
        # research use (recorded as such, by this command) and activated so the platform can be tried at once;
        # every result says what the model's validation allows.
        model_version_accept_for_research(model_version=version, accepted_by=INSTALLER)
        model_version_activate(
            model_version=version,
            confirm_unvalidated=True,
            confirmed_by=INSTALLER,
            reason=f"The shipped {kind} model, activated by {INSTALLER} because no {kind} model was active.",
        )
        self.stdout.write(self.style.SUCCESS(f"Activated {version.name} ({kind})."))
        if not version.validation.validated:
            self.stdout.write(self.style.WARNING(version.validation.statement))
        if version.kind == ModelKind.DENSITY and not version.validation.validated:
            self.stdout.write(self.style.WARNING("Its densities are research estimates, shown as such."))
