"""Read.ai_shown recorded whether the AI *could* be shown (the READERS_SEE_AI setting at claim time), not whether the
reader looked at it: it keeps that meaning under the name ai_available. Two fields record what happened:
ai_first_shown_at (when the reader first revealed the AI) and ai_reveal_recorded, False for the reads that exist
now (nobody knows whether their readers looked) and True for every read from here on."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("cases", "0015_image_reading_order"),
    ]

    operations = [
        migrations.RenameField(model_name="read", old_name="ai_shown", new_name="ai_available"),
        migrations.AlterField(
            model_name="read",
            name="ai_available",
            field=models.BooleanField(
                default=True,
                help_text="Whether the AI result could be shown to the reader (READERS_SEE_AI at claim time).",
            ),
        ),
        migrations.AddField(
            model_name="read",
            name="ai_first_shown_at",
            field=models.DateTimeField(
                blank=True, null=True, help_text="When the reader first revealed the AI in this read; empty if never."
            ),
        ),
        # Existing rows get False (their reveals were never recorded); the default then becomes True for new rows.
        migrations.AddField(
            model_name="read",
            name="ai_reveal_recorded",
            field=models.BooleanField(
                default=False,
                help_text="False for reads from before the platform recorded when the AI was revealed.",
            ),
        ),
        migrations.AlterField(
            model_name="read",
            name="ai_reveal_recorded",
            field=models.BooleanField(
                default=True,
                help_text="False for reads from before the platform recorded when the AI was revealed.",
            ),
        ),
    ]
