import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from inference.imports.services import ImportRefused, model_version_import


class Command(BaseCommand):
    help = (
        "Import a model made elsewhere: a Keras .keras file, a .zip of a TensorFlow SavedModel folder, or an .onnx "
        "file, with its manifest (JSON: name, version, vendor, licence, intended_use, input, output, "
        "operating_points, training_data, validation; see inference/imports/manifest.py). It is recorded as imported "
        "only if it passes the conformance check; activating it is a separate step (inference lifecycle)."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path, help="The model file.")
        parser.add_argument("--manifest", type=Path, required=True, help="The manifest, a JSON file.")

    def handle(self, *args, path, manifest, **options):
        if not path.is_file():
            raise CommandError(f"No file at {path}.")
        try:
            data = json.loads(manifest.read_text())
        except (OSError, ValueError) as exc:
            raise CommandError(f"The manifest {manifest} is not readable JSON: {exc}") from exc
        try:
            version = model_version_import(file_path=path, filename=path.name, manifest=data, via="import_model")
        except ImportRefused as exc:
            lines = [exc.message, *(f"  {field}: {message}" for field, message in exc.errors.items())]
            raise CommandError("\n".join(lines)) from exc
        report = version.conformance
        heatmap = report.get("heatmap_method") or f"none ({report.get('no_heatmap_reason')})"
        self.stdout.write(
            self.style.SUCCESS(
                f"{version.name} imported ({version.get_runtime_display()}), SHA-256 {version.file_sha256}; "
                f"{report.get('ms_per_image')} ms per image; heatmap: {heatmap}. Status: imported."
            )
        )
