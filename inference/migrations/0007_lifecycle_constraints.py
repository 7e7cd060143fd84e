# One active model per kind, the active flag equal to status == "active", and status changes that the database
# itself refuses to change or delete.

from django.db import migrations, models

PG_INSTALL = """
CREATE OR REPLACE FUNCTION inference_modelstatuschange_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'inference_modelstatuschange is append-only: %% refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER inference_modelstatuschange_append_only
    BEFORE UPDATE OR DELETE ON inference_modelstatuschange
    FOR EACH ROW EXECUTE FUNCTION inference_modelstatuschange_refuse_change();
"""
PG_REMOVE = """
DROP TRIGGER IF EXISTS inference_modelstatuschange_append_only ON inference_modelstatuschange;
DROP FUNCTION IF EXISTS inference_modelstatuschange_refuse_change();
"""
SQLITE_INSTALL = [
    "CREATE TRIGGER inference_modelstatuschange_no_update BEFORE UPDATE ON inference_modelstatuschange "
    "BEGIN SELECT RAISE(ABORT, 'inference_modelstatuschange is append-only: UPDATE refused'); END;",
    "CREATE TRIGGER inference_modelstatuschange_no_delete BEFORE DELETE ON inference_modelstatuschange "
    "BEGIN SELECT RAISE(ABORT, 'inference_modelstatuschange is append-only: DELETE refused'); END;",
]
SQLITE_REMOVE = [
    "DROP TRIGGER IF EXISTS inference_modelstatuschange_no_update;",
    "DROP TRIGGER IF EXISTS inference_modelstatuschange_no_delete;",
]


def install_triggers(apps, schema_editor):
    statements = [PG_INSTALL] if schema_editor.connection.vendor == "postgresql" else SQLITE_INSTALL
    for statement in statements:
        schema_editor.execute(statement)


def remove_triggers(apps, schema_editor):
    statements = [PG_REMOVE] if schema_editor.connection.vendor == "postgresql" else SQLITE_REMOVE
    for statement in statements:
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("inference", "0006_existing_models_status")]
    operations = [
        migrations.AddConstraint(
            model_name="modelversion",
            constraint=models.UniqueConstraint(
                condition=models.Q(("is_active", True)), fields=("kind",), name="one_active_model_per_kind"
            ),
        ),
        migrations.AddConstraint(
            model_name="modelversion",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("is_active", True), ("status", "active")),
                    models.Q(("is_active", False), models.Q(("status", "active"), _negated=True)),
                    _connector="OR",
                ),
                name="model_active_flag_matches_status",
            ),
        ),
        migrations.RunPython(install_triggers, remove_triggers),
    ]
