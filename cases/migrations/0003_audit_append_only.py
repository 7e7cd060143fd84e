"""The database itself refuses UPDATE and DELETE on the audit table (PostgreSQL and SQLite triggers)."""

from django.db import migrations

PG_INSTALL = """
CREATE OR REPLACE FUNCTION cases_auditevent_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'cases_auditevent is append-only: %% refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER cases_auditevent_append_only
    BEFORE UPDATE OR DELETE ON cases_auditevent
    FOR EACH ROW EXECUTE FUNCTION cases_auditevent_refuse_change();
"""
PG_REMOVE = """
DROP TRIGGER IF EXISTS cases_auditevent_append_only ON cases_auditevent;
DROP FUNCTION IF EXISTS cases_auditevent_refuse_change();
"""
SQLITE_INSTALL = [
    "CREATE TRIGGER cases_auditevent_no_update BEFORE UPDATE ON cases_auditevent "
    "BEGIN SELECT RAISE(ABORT, 'cases_auditevent is append-only: UPDATE refused'); END;",
    "CREATE TRIGGER cases_auditevent_no_delete BEFORE DELETE ON cases_auditevent "
    "BEGIN SELECT RAISE(ABORT, 'cases_auditevent is append-only: DELETE refused'); END;",
]
SQLITE_REMOVE = [
    "DROP TRIGGER IF EXISTS cases_auditevent_no_update;",
    "DROP TRIGGER IF EXISTS cases_auditevent_no_delete;",
]


def install(apps, schema_editor):
    statements = [PG_INSTALL] if schema_editor.connection.vendor == "postgresql" else SQLITE_INSTALL
    for statement in statements:
        schema_editor.execute(statement)


def remove(apps, schema_editor):
    statements = [PG_REMOVE] if schema_editor.connection.vendor == "postgresql" else SQLITE_REMOVE
    for statement in statements:
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("cases", "0002_reading_and_audit")]
    operations = [migrations.RunPython(install, remove)]
