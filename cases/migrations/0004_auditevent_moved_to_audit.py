# AuditEvent now belongs to the audit app (audit 0001 takes it into that app's state). The table and its
# triggers stay; only the model's state leaves this app, and its content type follows it.

from django.db import migrations


def content_type_to_audit(apps, schema_editor):
    content_type = apps.get_model("contenttypes", "ContentType")
    content_type.objects.filter(app_label="cases", model="auditevent").update(app_label="audit")


def content_type_to_cases(apps, schema_editor):
    content_type = apps.get_model("contenttypes", "ContentType")
    content_type.objects.filter(app_label="audit", model="auditevent").update(app_label="cases")


class Migration(migrations.Migration):
    dependencies = [
        ("cases", "0003_audit_append_only"),
        ("audit", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="AuditEvent")], database_operations=[]
        ),
        migrations.RunPython(content_type_to_audit, content_type_to_cases),
    ]
