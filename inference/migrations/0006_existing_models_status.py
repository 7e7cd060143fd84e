# Existing models get a status (0005 says how) and a first ModelStatusChange row each. Its own migration: rows
# written in the same transaction as the constraints that 0007 adds would leave PostgreSQL with pending trigger events.

from django.db import migrations
from django.utils import timezone


def existing_models_get_a_status(apps, schema_editor):
    ModelVersion = apps.get_model("inference", "ModelVersion")
    ModelStatusChange = apps.get_model("inference", "ModelStatusChange")
    now = timezone.now()
    for version in ModelVersion.objects.all():
        status = "active" if version.is_active else "imported"
        version.status = status
        version.status_changed_at = now
        version.save(update_fields=["status", "status_changed_at"])
        ModelStatusChange.objects.create(
            model_version=version,
            from_status="",
            to_status=status,
            changed_by_name="migration inference 0006",
            reason=(
                "Set when the model lifecycle was introduced: it was the active model."
                if status == "active"
                else "Set when the model lifecycle was introduced: it was registered and not active."
            ),
        )


class Migration(migrations.Migration):
    dependencies = [("inference", "0005_model_lifecycle")]
    operations = [migrations.RunPython(existing_models_get_a_status, migrations.RunPython.noop)]
