from django.core.management.base import BaseCommand, CommandError

from core.errors import ApplicationError
from inference.lifecycle import model_version_activate
from inference.models import ModelVersion


class Command(BaseCommand):
    help = (
        "Make an accepted model the active one of its kind (malignancy: queues images waiting for a "
        "model; the model it replaces goes back to accepted). A model that is not validated needs "
        "--confirm-unvalidated: its results are then shown as research scores. A model is accepted first: by a lead's "
        "sign-off of its local acceptance report (/models/<id>/acceptance/), or for research use only with "
        "set_model_status NAME accepted --for-research --reason '...'. A suspended model is resumed only by a lead "
        "radiologist, from its monitoring page."
    )

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument(
            "--confirm-unvalidated",
            action="store_true",
            help="Activate a model whose sealed-test figures do not show it better than chance (or that has none).",
        )
        parser.add_argument("--reason", default="", help="Why (recorded in its status history).")

    def handle(self, *args, name, confirm_unvalidated, reason, **options):
        version = ModelVersion.objects.filter(name=name).first()
        if version is None:
            raise CommandError(f"No model version named {name!r}.")
        self.stdout.write(version.validation.statement)
        try:
            model_version_activate(
                model_version=version,
                confirm_unvalidated=confirm_unvalidated,
                confirmed_by="activate_model",
                reason=reason,
            )
        except ApplicationError as exc:
            hint = " (add --confirm-unvalidated)" if "not validated" in exc.message else ""
            raise CommandError(f"{exc.message}{hint}") from exc
        self.stdout.write(self.style.SUCCESS(f"{name} is now the active {version.get_kind_display().lower()} model."))
