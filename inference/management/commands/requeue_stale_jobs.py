from django.conf import settings
from django.core.management.base import BaseCommand

from inference.serving.jobs import inference_jobs_requeue_stale


class Command(BaseCommand):
    help = (
        "Send again every analysis that has been queued or running for longer than --minutes (default: "
        "INFERENCE_STALE_SECONDS), e.g. after the broker lost its queue. Tasks are idempotent, so a job that is in "
        "fact still running is not analysed twice. Celery beat runs the same sweep every INFERENCE_SWEEP_SECONDS."
    )

    def add_arguments(self, parser):
        parser.add_argument("--minutes", type=float, default=None)

    def handle(self, *args, minutes, **options):
        seconds = settings.INFERENCE_STALE_SECONDS if minutes is None else int(minutes * 60)
        ids = inference_jobs_requeue_stale(older_than_seconds=seconds)
        self.stdout.write(f"Requeued {len(ids)} job(s){': ' + ', '.join(map(str, ids)) if ids else ''}.")
