from django.core.management.base import BaseCommand

from cases.studies.reconciliation import REPORTED, storage_reconcile


class Command(BaseCommand):
    help = (
        "Compare the media store with the database: remove files no row refers to once they are older than the "
        "grace period (uploads interrupted by a killed process), and report files rows refer to that are missing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Report only; remove nothing.")
        parser.add_argument("--grace-seconds", type=int, default=None, help="Default: STORAGE_RECONCILE_GRACE_SECONDS.")

    def handle(self, *args, dry_run, grace_seconds, **options):
        result = storage_reconcile(grace_seconds=grace_seconds, delete=not dry_run)
        for title, names in (("Unreferenced", result.unreferenced), ("Missing", result.missing)):
            for name in names[:REPORTED]:
                self.stdout.write(f"{title}: {name}")
            if len(names) > REPORTED:
                self.stdout.write(f"{title}: ... and {len(names) - REPORTED} more")
        style = self.style.WARNING if result.missing else self.style.SUCCESS
        self.stdout.write(style(("Dry run: " if dry_run else "") + result.summary()))
