"""Screening decision rules (cases.reading.rules) in the database, and drafts of reads in progress.

Recall follows from BI-RADS (0, 4, 5 recall; 1, 2 routine) and a screening read gives 0, 1, 2, 4 or 5. Reads
submitted before these rules may hold BI-RADS 3 or 6, or a recall that contradicts the category; a submitted read
is a clinical record (corrected only by addenda), so those rows are not rewritten, and a plain ADD CONSTRAINT would
fail on them. The two CHECKs are therefore added NOT VALID: PostgreSQL enforces them on every row inserted or
updated from now on and does not scan the old ones. (Once old rows are known to comply, `ALTER TABLE ... VALIDATE
CONSTRAINT` makes them fully valid.) Django's state gets the same constraints, so the model and makemigrations agree.
"""

from django.db import migrations, models

TABLE = "cases_breastassessment"
RECALL_SQL = "(recall AND birads IN (0, 4, 5)) OR (NOT recall AND birads NOT IN (0, 4, 5))"
SCREENING_SQL = "birads IN (0, 1, 2, 4, 5)"


def _add_not_valid(name: str, condition: models.Q, sql: str):
    constraint = models.CheckConstraint(condition=condition, name=name)

    def forwards(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f'ALTER TABLE {TABLE} ADD CONSTRAINT "{name}" CHECK ({sql}) NOT VALID')
        else:  # the embedded SQLite database (development): rebuilt with the constraint, as Django does
            schema_editor.add_constraint(apps.get_model("cases", "BreastAssessment"), constraint)

    def backwards(apps, schema_editor):
        schema_editor.remove_constraint(apps.get_model("cases", "BreastAssessment"), constraint)

    return migrations.SeparateDatabaseAndState(
        state_operations=[migrations.AddConstraint(model_name="breastassessment", constraint=constraint)],
        database_operations=[migrations.RunPython(forwards, backwards)],
    )


class Migration(migrations.Migration):
    dependencies = [
        ("cases", "0008_viewer_pixels_and_ai_reveal"),
    ]

    operations = [
        # Drafts of reads in progress (cases.reading.claims.read_draft_save).
        migrations.AddField(model_name="read", name="draft", field=models.JSONField(blank=True, null=True)),
        migrations.AddField(model_name="read", name="draft_saved_at", field=models.DateTimeField(blank=True, null=True)),
        migrations.AlterField(
            model_name="breastassessment",
            name="ai_agreement",
            field=models.CharField(
                choices=[
                    ("agree", "Agree with the AI"),
                    ("override", "Override the AI"),
                    ("not_shown", "AI not shown or not available"),
                    ("not_applicable", "Not applicable: AI not validated (research score)"),
                ],
                max_length=14,
            ),
        ),
        _add_not_valid(
            "recall_follows_birads",
            models.Q(recall=True, birads__in=(0, 4, 5)) | models.Q(recall=False) & ~models.Q(birads__in=(0, 4, 5)),
            RECALL_SQL,
        ),
        _add_not_valid("screening_birads", models.Q(birads__in=(0, 1, 2, 4, 5)), SCREENING_SQL),
    ]
