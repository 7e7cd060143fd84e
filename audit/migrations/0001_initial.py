# The AuditEvent model moved here from the cases app. Its table (cases_auditevent, created by cases 0002, with the
# append-only triggers of cases 0003) stays where it is: this migration only takes the model into this app's state.

import django.core.serializers.json
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [("cases", "0003_audit_append_only")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="AuditEvent",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("created_at", models.DateTimeField(db_index=True)),
                        ("actor_id", models.BigIntegerField(blank=True, db_index=True, null=True)),
                        ("actor_username", models.CharField(blank=True, max_length=150)),
                        ("actor_role", models.CharField(blank=True, max_length=32)),
                        ("action", models.CharField(db_index=True, max_length=40)),
                        ("object_type", models.CharField(blank=True, max_length=40)),
                        ("object_id", models.CharField(blank=True, max_length=64)),
                        ("study_id", models.BigIntegerField(blank=True, db_index=True, null=True)),
                        ("ip_address", models.GenericIPAddressField(blank=True, null=True)),
                        (
                            "details",
                            models.JSONField(default=dict, encoder=django.core.serializers.json.DjangoJSONEncoder),
                        ),
                        ("prev_hash", models.CharField(max_length=64)),
                        ("hash", models.CharField(max_length=64, unique=True)),
                    ],
                    options={"ordering": ["id"], "db_table": "cases_auditevent"},
                ),
            ],
            database_operations=[],
        ),
    ]
