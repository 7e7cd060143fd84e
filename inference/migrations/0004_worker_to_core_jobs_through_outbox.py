# Worker moved to core (its table stays); jobs are asked for through the outbox (core.outbox), so the job's own
# sending marks go. Jobs still queued or running when this runs get their outbox message, so none is forgotten.

from django.db import migrations
from django.utils import timezone


def unfinished_jobs_into_the_outbox(apps, schema_editor):
    InferenceJob = apps.get_model("inference", "InferenceJob")
    OutboxMessage = apps.get_model("core", "OutboxMessage")
    now = timezone.now()
    for job in InferenceJob.objects.filter(status__in=("queued", "running")).select_related("image").iterator():
        OutboxMessage.objects.get_or_create(
            key=f"inference-job:{job.pk}",
            defaults={
                "task": "inference.run_inference",
                "kwargs": {"job_id": job.pk},
                "description": f"AI analysis of image {job.image_id}",
                "subject": f"study:{job.image.study_id}",
                "status": "pending",
                "send_after": now,
            },
        )


class Migration(migrations.Migration):

    dependencies = [
        ("inference", "0003_job_worker_heartbeat"),
        ("core", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel(name="Worker")], database_operations=[]),
        migrations.RunPython(unfinished_jobs_into_the_outbox, migrations.RunPython.noop),
        migrations.RemoveField(model_name="inferencejob", name="enqueued_at"),
        migrations.RemoveField(model_name="inferencejob", name="requeued_at"),
    ]
