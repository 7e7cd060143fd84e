from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audit.verification import audit_chain_verify
from cases.backups import backup_restore, storage_check
from core.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Restore a backup (made by backup_platform) onto a fresh server: an empty database and an empty media "
        "store (folder or bucket, MEDIA_STORAGE). Then check the audit trail's hash chain and that every image's "
        "files are there and intact; exit status 1 when a check fails."
    )

    def add_arguments(self, parser):
        parser.add_argument("backup", type=Path, help="The backup's folder.")

    def handle(self, *args, backup, **options):
        try:
            manifest = backup_restore(from_dir=backup)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        checked, broken = audit_chain_verify()
        if broken is not None:
            raise CommandError(f"Restored, but the audit trail is broken at event {broken.event_id}: {broken.problem}.")
        if checked != manifest["audit_events"]:
            raise CommandError(f"Restored {checked} audit event(s); the backup recorded {manifest['audit_events']}.")
        files = storage_check()
        if files.problems:
            raise CommandError("Restored, but image files are not intact:\n" + "\n".join(files.problems[:50]))
        self.stdout.write(
            self.style.SUCCESS(
                f"Restored from {backup}: audit trail intact ({checked} events), all {files.images} image(s) open."
            )
        )
