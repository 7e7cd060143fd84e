from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from cases.backups import backup_create
from core.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Back up the database and the media store, consistent with each other, into a new folder (database "
        "dump, media archive, manifest with checksums). The platform can keep running."
    )

    def add_arguments(self, parser):
        parser.add_argument("out", type=Path, help="A new or empty folder.")

    def handle(self, *args, out, **options):
        try:
            manifest = backup_create(out_dir=out)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Backup in {out}: {manifest['images']} image(s), {manifest['predictions']} prediction(s), "
                f"{manifest['audit_events']} audit event(s)."
            )
        )
