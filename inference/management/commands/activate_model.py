from django.core.management.base import BaseCommand, CommandError

from inference.models import ModelVersion
from inference.serving.registry import model_version_activate
from mammo_platform.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Make a registered model version the active one (queues images waiting for a model). A model that is not "
        "validated needs --confirm-unvalidated: its results are then shown as research scores."
    )

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument(
            "--confirm-unvalidated",
            action="store_true",
            help="Activate a model whose sealed-test figures do not show it better than chance (or that has none).",
        )

    def handle(self, *args, name, confirm_unvalidated, **options):
        version = ModelVersion.objects.filter(name=name).first()
        if version is None:
            raise CommandError(f"No model version named {name!r}.")
        self.stdout.write(version.validation.statement)
        try:
            model_version_activate(
                model_version=version, confirm_unvalidated=confirm_unvalidated, confirmed_by="activate_model"
            )
        except ApplicationError as exc:
            raise CommandError(f"{exc.message} (add --confirm-unvalidated)") from exc
        self.stdout.write(self.style.SUCCESS(f"{name} is now the active model."))
