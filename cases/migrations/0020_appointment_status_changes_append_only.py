"""The database itself refuses UPDATE and DELETE on appointments' status changes (PostgreSQL and SQLite triggers),
as on the audit trail: a status row, once written, is what happened."""

from django.db import migrations

TABLE = "cases_appointmentstatuschange"
PG_INSTALL = f"""
CREATE OR REPLACE FUNCTION {TABLE}_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '{TABLE} is append-only: %% refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER {TABLE}_append_only
    BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION {TABLE}_refuse_change();
"""
PG_REMOVE = f"""
DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE};
DROP FUNCTION IF EXISTS {TABLE}_refuse_change();
"""
SQLITE_INSTALL = [
    f"CREATE TRIGGER {TABLE}_no_update BEFORE UPDATE ON {TABLE} "
    f"BEGIN SELECT RAISE(ABORT, '{TABLE} is append-only: UPDATE refused'); END;",
    f"CREATE TRIGGER {TABLE}_no_delete BEFORE DELETE ON {TABLE} "
    f"BEGIN SELECT RAISE(ABORT, '{TABLE} is append-only: DELETE refused'); END;",
]
SQLITE_REMOVE = [f"DROP TRIGGER IF EXISTS {TABLE}_no_update;", f"DROP TRIGGER IF EXISTS {TABLE}_no_delete;"]


def install(apps, schema_editor):
    for statement in [PG_INSTALL] if schema_editor.connection.vendor == "postgresql" else SQLITE_INSTALL:
        schema_editor.execute(statement)


def remove(apps, schema_editor):
    for statement in [PG_REMOVE] if schema_editor.connection.vendor == "postgresql" else SQLITE_REMOVE:
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("cases", "0019_screening_episodes")]

    operations = [migrations.RunPython(install, remove)]
