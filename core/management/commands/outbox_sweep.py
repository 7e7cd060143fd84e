from django.core.management.base import BaseCommand

from core.outbox import outbox_sweep


class Command(BaseCommand):
    help = (
        "Run the outbox sweep now, as Celery beat does every OUTBOX_SWEEP_SECONDS: send again what the broker lost "
        "and what a dead worker process held, then send everything due (e.g. after the broker was restarted "
        "empty). Tasks are idempotent, so work that is in fact still running is not done twice."
    )

    def handle(self, *args, **options):
        counts = outbox_sweep()
        self.stdout.write(f"Reopened {counts['reopened']}, sent {counts['sent']}.")
