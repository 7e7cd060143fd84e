from django.core.management.base import BaseCommand

from inference.services import inference_jobs_requeue_stale


class Command(BaseCommand):
    help = (
        "Send again every analysis that has been queued or running for longer than --minutes (default 30), e.g. "
        "after the broker lost its queue. Tasks are idempotent, so a job that is in fact still running is not "
        "analysed twice. Suitable for cron."
    )

    def add_arguments(self, parser):
        parser.add_argument("--minutes", type=int, default=30)

    def handle(self, *args, minutes, **options):
        ids = inference_jobs_requeue_stale(older_than_seconds=minutes * 60)
        self.stdout.write(f"Requeued {len(ids)} job(s){': ' + ', '.join(map(str, ids)) if ids else ''}.")
