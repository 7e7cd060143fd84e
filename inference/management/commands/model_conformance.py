"""Run the conformance check of a model file and print its report as one line of JSON (the import service starts
this in a child process: inference.imports.services.conformance_run_isolated). Not for people: use import_model."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand

from inference.imports.conformance import conformance_check
from inference.serving.spec import ServingSpec


class Command(BaseCommand):
    help = __doc__.splitlines()[0]
    requires_system_checks = []  # a child process per import: start fast, touch no database

    def add_arguments(self, parser):
        parser.add_argument("request", type=Path, help="JSON: model_path, runtime, input_size, threshold, manifest.")

    def handle(self, *args, request, **options):
        data = json.loads(request.read_text())
        spec = ServingSpec(
            model_path=Path(data["model_path"]),
            backbone="imported",
            input_size=int(data["input_size"]),
            threshold=float(data["threshold"]),
            runtime=data["runtime"],
            manifest=data["manifest"],
        )
        report = conformance_check(spec, max_ms_per_image=float(data["max_ms_per_image"]))
        self.stdout.write(json.dumps(report))
