from django.core.management.base import BaseCommand, CommandError

from core.errors import ApplicationError
from inference.lifecycle import allowed_transitions, model_version_status_change
from inference.models import ModelStatus, ModelVersion


class Command(BaseCommand):
    help = (
        "Change a model's status (imported, shadow, accepted, active, suspended, retired) with a reason, recorded in "
        "its status history and the audit trail as made by this command. Transitions: imported -> shadow/accepted/"
        "retired; shadow -> accepted/retired/imported; accepted -> active/shadow/retired; active -> suspended/"
        "retired/accepted; suspended -> retired (suspended -> active: a lead radiologist resumes it, from the model's "
        "monitoring page). A model is accepted at this site only when a lead signs off its local acceptance report "
        "(/models/<id>/acceptance/); here, only --for-research, which the record says."
    )

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("status", choices=ModelStatus.values)
        parser.add_argument("--reason", required=True)
        parser.add_argument("--confirm-unvalidated", action="store_true", help="To activate a model not validated.")
        parser.add_argument(
            "--for-research",
            action="store_true",
            help="To accept a model for research use only, without a local acceptance test (the record says so).",
        )

    def handle(self, *args, name, status, reason, confirm_unvalidated, for_research, **options):
        version = ModelVersion.objects.filter(name=name).first()
        if version is None:
            raise CommandError(f"No model version named {name!r}.")
        try:
            model_version_status_change(
                model_version=version,
                to_status=status,
                reason=reason,
                actor_name="set_model_status",
                confirm_unvalidated=confirm_unvalidated,
                for_research=for_research,
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        nexts = ", ".join(allowed_transitions(status)) or "none"
        self.stdout.write(self.style.SUCCESS(f"{name}: {status} (next possible: {nexts})."))
