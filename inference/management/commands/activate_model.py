from django.core.management.base import BaseCommand, CommandError

from inference.models import ModelVersion
from inference.serving.registry import model_version_activate


class Command(BaseCommand):
    help = "Make a registered model version the active one (queues images waiting for a model)."

    def add_arguments(self, parser):
        parser.add_argument("name")

    def handle(self, *args, name, **options):
        version = ModelVersion.objects.filter(name=name).first()
        if version is None:
            raise CommandError(f"No model version named {name!r}.")
        model_version_activate(model_version=version)
        self.stdout.write(self.style.SUCCESS(f"{name} is now the active model."))
