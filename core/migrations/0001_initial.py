# The ground floor: the transactional outbox, and the Worker model moved here from inference (same table, kept).

from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("inference", "0003_job_worker_heartbeat"),  # made the table inference_worker, which Worker keeps
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Worker",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("name", models.CharField(max_length=200, unique=True)),
                        ("started_at", models.DateTimeField()),
                        ("last_seen", models.DateTimeField(db_index=True)),
                    ],
                    options={"db_table": "inference_worker", "ordering": ["-last_seen"]},
                ),
            ],
            database_operations=[],
        ),
        migrations.CreateModel(
            name="OutboxMessage",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("key", models.CharField(help_text="What the work is about, e.g. inference-job:12.", max_length=200, unique=True)),
                ("task", models.CharField(help_text="The Celery task that does it.", max_length=200)),
                ("kwargs", models.JSONField(default=dict)),
                ("description", models.CharField(help_text="What it is, for people.", max_length=300)),
                ("subject", models.CharField(blank=True, db_index=True, max_length=100)),
                ("status", models.CharField(choices=[("pending", "Waiting to be sent"), ("sent", "In the queue"), ("running", "Running"), ("done", "Done"), ("failed", "Failed")], default="pending", max_length=10)),
                ("send_after", models.DateTimeField(help_text="Not sent before this time (a delayed step or a retry's backoff).")),
                ("dispatches", models.PositiveIntegerField(default=0, help_text="Times handed to the broker.")),
                ("send_failures", models.PositiveIntegerField(default=0, help_text="Times the broker could not be reached.")),
                ("last_error", models.TextField(blank=True)),
                ("worker", models.CharField(blank=True, help_text="The process running it (host:pid).", max_length=200)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("sent_at", models.DateTimeField(blank=True, null=True)),
                ("started_at", models.DateTimeField(blank=True, null=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={
                "ordering": ["send_after", "pk"],
                "indexes": [
                    models.Index(fields=["status", "send_after"], name="outbox_due"),
                    models.Index(condition=models.Q(("status", "done"), _negated=True), fields=["status", "updated_at"], name="outbox_unfinished"),
                ],
            },
        ),
    ]
