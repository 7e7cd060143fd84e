# The audit trail becomes several hash chains side by side (ADR 0004). The column is added with plain SQL, the same
# on PostgreSQL and SQLite: Django's SQLite schema editor would rebuild the table for a NOT NULL column, and the
# rebuilt table would lose its append-only triggers (cases 0003). Existing rows are chain 0, their links unchanged.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    "ALTER TABLE cases_auditevent ADD COLUMN chain smallint NOT NULL DEFAULT 0",
                    "ALTER TABLE cases_auditevent DROP COLUMN chain",
                ),
            ],
            state_operations=[
                migrations.AddField(
                    model_name="auditevent",
                    name="chain",
                    field=models.SmallIntegerField(db_default=0, default=0),
                ),
            ],
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(fields=["chain", "id"], name="auditevent_chain_id"),
        ),
    ]
