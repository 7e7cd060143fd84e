"""The analysis jobs a worker process runs beat with it: at each of the process's heartbeats (core.workers) its
running jobs are marked alive (InferenceJob.heartbeat_at). A job whose process stopped beating was interrupted: the
outbox sweep sends it again and the next worker takes it over (inference.serving.jobs.inference_job_claim), while
a duplicate message for a job whose process is alive does nothing."""

from django.dispatch import receiver

from core.models import Worker
from core.workers import worker_beat
from inference.models import InferenceJob


@receiver(worker_beat, sender=Worker)
def _running_jobs_beat(sender, name: str, now, **kwargs) -> None:
    InferenceJob.all_objects.filter(worker=name, status=InferenceJob.Status.RUNNING).update(heartbeat_at=now)
